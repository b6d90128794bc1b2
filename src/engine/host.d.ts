/**
 * The host APIs the engine uses, declared as narrowly as it uses them. Workers, Node >= 20 and
 * browsers all provide them. The engine compiles against this file and ES2022 alone
 * (src/engine/tsconfig.json), so anything else a host offers is a compile error here; the root
 * tsconfig leaves this file out and checks the same code against the full host types.
 */
declare var performance: { now(): number };
declare var crypto: { readonly subtle: { digest(algorithm: 'SHA-256', data: Uint8Array<ArrayBuffer>): Promise<ArrayBuffer> } };
declare class TextDecoder {
  decode(input?: Uint8Array): string;
}
/** Only `aborted` is read: any host's AbortSignal fits. */
interface AbortSignal {
  readonly aborted: boolean;
}
