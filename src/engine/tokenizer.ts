/**
 * Text <-> token ids over @huggingface/tokenizers (reads the exported `tokenizer.json`).
 *
 * Encoding never adds special tokens (the caller decides where `<s>` goes). Decoding skips
 * special tokens and disables the "clean up tokenization spaces" pass, which corrupts code
 * ("'a', 'b'" would lose a space).
 */
import { Tokenizer } from '@huggingface/tokenizers';

const DECODE_OPTS = { skip_special_tokens: true, clean_up_tokenization_spaces: false } as const;

export class TextTokenizer {
  private readonly tok: Tokenizer;

  /** `json`: the parsed tokenizer.json, its text, or its UTF-8 bytes. */
  constructor(json: object | string | Uint8Array) {
    const obj =
      json instanceof Uint8Array
        ? JSON.parse(new TextDecoder().decode(json))
        : typeof json === 'string'
          ? JSON.parse(json)
          : json;
    this.tok = new Tokenizer(obj, {});
  }

  encode(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: readonly number[]): string {
    if (ids.length === 0) return ''; // the library rejects an empty list
    return this.tok.decode(ids as number[], DECODE_OPTS);
  }

  streamDecoder(): StreamDecoder {
    return new StreamDecoder(this);
  }
}

/**
 * Incremental detokenization: push ids, get the text they newly complete.
 *
 * Decodes a short window of recent ids twice (up to the last emitted id, and to the end) and
 * emits the difference, which handles pieces whose rendering depends on their neighbours. Text
 * ending in U+FFFD means a byte-fallback sequence (`<0xNN>` pieces) stopped mid-character: it is
 * held back until the character completes (or `flush()` at the end), so no UTF-8 character is
 * ever split across two emitted strings.
 */
export class StreamDecoder {
  private ids: number[] = [];
  /** ids[prefix, read) were decoded and emitted; the window starts at prefix. */
  private prefix = 0;
  private read = 0;
  private emitted = '';

  constructor(private readonly tokenizer: TextTokenizer) {}

  /** All text emitted so far. */
  get text(): string {
    return this.emitted;
  }

  /** Appends ids; returns the newly completed text ('' if none yet). */
  push(ids: readonly number[]): string {
    for (const id of ids) this.ids.push(id);
    const before = this.tokenizer.decode(this.ids.slice(this.prefix, this.read));
    const after = this.tokenizer.decode(this.ids.slice(this.prefix));
    if (after.length > before.length && !after.endsWith('\uFFFD') && after.startsWith(before)) {
      const fresh = after.slice(before.length);
      this.prefix = this.read;
      this.read = this.ids.length;
      this.emitted += fresh;
      return fresh;
    }
    return '';
  }

  /** Emits whatever is held back (a truly incomplete character becomes U+FFFD). */
  flush(): string {
    const before = this.tokenizer.decode(this.ids.slice(this.prefix, this.read));
    const after = this.tokenizer.decode(this.ids.slice(this.prefix));
    this.prefix = this.read = this.ids.length;
    const fresh = after.startsWith(before) ? after.slice(before.length) : '';
    this.emitted += fresh;
    return fresh;
  }
}
