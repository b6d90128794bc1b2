"""Python side of the tokenizer: SentencePiece plus the newline/space normaliser that
tokenizer.json also declares. Used by training, export fixtures and evaluation."""
NEWLINE = "\u010a"  # "Ċ"
SPACE = "\u2581"    # "▁"
DOC_SEP = "\n\x1e\n"
BOS_ID = 1
EOS_ID = 2


class SpmTokenizer:
    def __init__(self, model_file):
        import sentencepiece as spm
        self.sp = spm.SentencePieceProcessor(model_file=model_file)

    def encode(self, text):
        return self.sp.encode(text.replace("\n", NEWLINE))

    def decode(self, ids):
        return self.sp.decode(list(ids)).replace(NEWLINE, "\n")

    def encode_corpus(self, text):
        """Each document becomes BOS + its tokens."""
        out = []
        docs = [d for d in text.split(DOC_SEP) if d]
        for piece in self.sp.encode([d.replace("\n", NEWLINE) for d in docs]):
            out.append(BOS_ID)
            out.extend(piece)
        return out
