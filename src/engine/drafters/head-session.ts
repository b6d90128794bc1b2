/**
 * A draft head over one ORT session: inputs `hidden` float32 [N,d] and `token_ids` int64 [N]
 * (the pending token), one float32 output. Batch 1 per round.
 */
import type { DraftContext, FusedPass, TokenTree } from '../types.js';
import { ort, type OrtSession } from '../ort.js';

/** What a drafter needs from a head: its output for the round (and a run counter for tests). */
export interface DraftHead {
  runs: number;
  output(ctx: DraftContext): Promise<Float32Array>;
  /** A head that can run inside the verify pass (prefix-head.ts). */
  fusedPass?(tokens: readonly number[], tree: TokenTree): FusedPass | undefined;
}

export class DraftHeadSession implements DraftHead {
  readonly session: OrtSession;
  readonly d: number;
  readonly outputName: string;
  /** session.run() calls so far. */
  runs = 0;

  constructor(session: OrtSession, d: number, outputName: string) {
    for (const n of ['hidden', 'token_ids']) {
      if (!session.inputNames.includes(n)) throw new Error(`draft head: missing input ${n} (has ${session.inputNames.join(', ')})`);
    }
    if (!session.outputNames.includes(outputName)) {
      throw new Error(`draft head: missing output ${outputName} (has ${session.outputNames.join(', ')})`);
    }
    this.session = session;
    this.d = d;
    this.outputName = outputName;
  }

  output(ctx: DraftContext): Promise<Float32Array> {
    return this.run(ctx.hidden, ctx.pending);
  }

  /** One head pass for one position; returns the output's data (a fresh JS array). */
  async run(hidden: Float32Array, token: number): Promise<Float32Array> {
    if (hidden.length !== this.d) throw new Error(`draft head: hidden has ${hidden.length} values, expected ${this.d}`);
    // Fresh (tiny) input buffers: sessions sharing this drafter may interleave across awaits,
    // and `hidden` may be a view into a larger array.
    const h = Float32Array.from(hidden);
    const out = await this.session.run({
      hidden: new ort.Tensor('float32', h, [1, this.d]),
      token_ids: new ort.Tensor('int64', BigInt64Array.of(BigInt(token)), [1]),
    });
    this.runs++;
    const data = out[this.outputName].data as Float32Array;
    for (const [name, t] of Object.entries(out)) if (name !== this.outputName) t.dispose();
    return data;
  }
}
