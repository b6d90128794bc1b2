"""Train the BPE tokenizer (SentencePiece, ~4096 pieces, byte fallback) and write it as a
Hugging Face `tokenizer.json`, the format that `@huggingface/tokenizers` reads in JS.

Code needs newlines and runs of spaces inside pieces, so the text is normalised before BPE:
"\n" -> "Ċ" and " " -> "▁". SentencePiece reads one sentence per line, so the placeholder is
what lets pieces such as "):Ċ▁▁▁▁" exist. The same normaliser/decoder pair goes into
tokenizer.json, and `ctc_tokenizer.py` applies it for Python, so both encode identically
(tested by test/engine/tokenizer.test.ts against a fixture written by this script).

Output: data/tokenizer/{spm.model,tokenizer.json} and data/tokens/{train,val}.bin (uint16).
"""
import argparse, json, os, random, time
import numpy as np

from training.ctc_tokenizer import SpmTokenizer, NEWLINE, SPACE, DOC_SEP, BOS_ID, EOS_ID


def sentences_for_training(text, max_bytes, limit, seed):
    """Chunks of consecutive lines (newline placeholder inside), at most max_bytes each."""
    rng = random.Random(seed)
    docs = text.split(DOC_SEP)
    chunks = []
    for doc in docs:
        lines = doc.split("\n")
        i = 0
        while i < len(lines):
            n = rng.randint(1, 12)
            chunk = NEWLINE.join(lines[i:i + n]) + (NEWLINE if i + n < len(lines) else "")
            i += n
            if 0 < len(chunk.encode()) <= max_bytes:
                chunks.append(chunk)
    rng.shuffle(chunks)
    return chunks[:limit]


def to_tokenizer_json(sp):
    """SentencePiece BPE -> HF tokenizer.json (same construction as HF's Llama converter)."""
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    scores = {sp.id_to_piece(i): sp.get_score(i) for i in range(sp.get_piece_size())}
    merges = []
    for piece, pid in vocab.items():
        if sp.is_control(pid) or sp.is_unknown(pid) or sp.is_byte(pid) or len(piece) < 2:
            continue
        for k in range(1, len(piece)):
            a, b = piece[:k], piece[k:]
            if a in vocab and b in vocab:
                merges.append((pid, vocab[a], vocab[b], a, b))
    merges.sort()  # by id of the merged piece (= score order in SentencePiece BPE), then parts
    specials = [(i, sp.id_to_piece(i)) for i in range(sp.get_piece_size())
                if sp.is_control(i) or sp.is_unknown(i)]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": p, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True} for i, p in specials],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Replace", "pattern": {"String": "\n"}, "content": NEWLINE},
            {"type": "Replace", "pattern": {"String": " "}, "content": SPACE}]},
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
            {"type": "Replace", "pattern": {"String": NEWLINE}, "content": "\n"},
            {"type": "ByteFallback"},
            {"type": "Fuse"}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": [[a, b] for _, _, _, a, b in merges]},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="data/corpus")
    ap.add_argument("--out", default="data/tokenizer")
    ap.add_argument("--tokens-out", default="data/tokens")
    ap.add_argument("--vocab-size", type=int, default=4096)
    ap.add_argument("--sentences", type=int, default=400_000)
    args = ap.parse_args()
    import sentencepiece as spm

    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.tokens_out, exist_ok=True)
    train_text = open(os.path.join(args.corpus, "train.txt"), encoding="utf-8").read()
    t0 = time.time()
    sentences = sentences_for_training(train_text, 4000, args.sentences, seed=0)
    print(f"training BPE on {len(sentences)} chunks", flush=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_prefix=os.path.join(args.out, "spm"),
        model_type="bpe", vocab_size=args.vocab_size, byte_fallback=True,
        normalization_rule_name="identity", add_dummy_prefix=False, remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True, split_digits=True, character_coverage=0.9995,
        max_sentence_length=4096, max_sentencepiece_length=16, unk_id=0, bos_id=BOS_ID, eos_id=EOS_ID,
        pad_id=-1, num_threads=os.cpu_count(), minloglevel=1)
    print(f"BPE trained in {time.time() - t0:.0f}s", flush=True)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(args.out, "spm.model"))
    with open(os.path.join(args.out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(to_tokenizer_json(sp), f, ensure_ascii=False)

    tok = SpmTokenizer(os.path.join(args.out, "spm.model"))
    for split in ("train", "val"):
        text = open(os.path.join(args.corpus, f"{split}.txt"), encoding="utf-8").read()
        ids = tok.encode_corpus(text)
        arr = np.array(ids, dtype=np.uint16)
        arr.tofile(os.path.join(args.tokens_out, f"{split}.bin"))
        print(f"{split}: {len(text.encode())} bytes -> {len(arr)} tokens "
              f"({len(text.encode()) / len(arr):.2f} bytes/token)", flush=True)


if __name__ == "__main__":
    main()
