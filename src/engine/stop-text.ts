/**
 * Stop-text matching: the completion's token ids become the text released to the client, with
 * OpenAI stop strings (the text ends before the first stop string; one may span tokens).
 *
 * Two things are held back. The detokenizer (StreamDecoder) holds an incomplete UTF-8 character
 * until its last byte piece arrives. StopText holds decoded text that could still be the start
 * of a stop string (`held`, the longest suffix that is a proper prefix of one) until it either
 * completes one (then it and everything after it is dropped) or cannot any more (then it is
 * released). Both carry into a continuation request (finish reason 'rounds'), so a generation
 * split by maxRounds releases exactly what one request would have.
 */
import type { StreamDecoder } from './tokenizer.js';

/** What StopText needs of a detokenizer (a StreamDecoder): ids in, newly completed text out. */
export type TextStream = Pick<StreamDecoder, 'push' | 'flush'>;

export class StopText {
  private readonly decoder: TextStream;
  private readonly stops: readonly string[];
  /** Decoded text not yet released: it could begin a stop string. */
  private held: string;
  private stopped = false;

  /** `held`: text carried from a previous request (see `continueWith`). Empty stop strings are ignored. */
  constructor(decoder: TextStream, stops: readonly string[] = [], held = '') {
    this.decoder = decoder;
    this.stops = stops.filter((s) => s.length > 0);
    this.held = held;
  }

  /** A stop string completed: nothing more is released. */
  get stopHit(): boolean {
    return this.stopped;
  }

  /** Text held back so far (could begin a stop string). */
  get heldText(): string {
    return this.held;
  }

  /** Appends one token; returns the text it releases ('' while held back). When it completes a
   *  stop string, returns the text before the stop and sets `stopHit`. */
  push(token: number): string {
    if (this.stopped) return '';
    this.held += this.decoder.push([token]);
    if (this.stops.length === 0) return this.release(this.held.length);
    const at = firstStop(this.held, this.stops);
    if (at >= 0) {
      const out = this.held.slice(0, at);
      this.held = '';
      this.stopped = true;
      return out;
    }
    return this.release(this.held.length - heldSuffix(this.held, this.stops));
  }

  /** End of the generation: the held text and a trailing partial character ('' after a stop string). */
  flush(): string {
    if (this.stopped) return '';
    const rest = this.held + this.decoder.flush();
    this.held = '';
    return rest;
  }

  /** The same text state (detokenizer and held text) with the stop strings of a continuation request. */
  continueWith(stops: readonly string[] = []): StopText {
    return new StopText(this.decoder, stops, this.held);
  }

  private release(n: number): string {
    const out = this.held.slice(0, n);
    this.held = this.held.slice(n);
    return out;
  }
}

/** Index of the earliest occurrence of any stop string in s, or -1. */
export function firstStop(s: string, stops: readonly string[]): number {
  let best = -1;
  for (const st of stops) {
    const i = s.indexOf(st);
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}

/** Length of the longest suffix of s that is a proper prefix of some stop string (must be held). */
export function heldSuffix(s: string, stops: readonly string[]): number {
  let keep = 0;
  for (const st of stops) {
    for (let k = Math.min(st.length - 1, s.length); k > keep; k--) {
      if (s.endsWith(st.slice(0, k))) {
        keep = k;
        break;
      }
    }
  }
  return keep;
}
