/**
 * Public entry point: load a model folder from a ShardSource, then create or restore sessions.
 * One Engine per model per isolate; sessions are cheap (a KV cache and some arrays).
 */
import type { Drafter, Manifest, ModelConfig, ShardSource } from './types.js';
import { DecodingSession, type EngineCore } from './decoder.js';
import { EngineError } from './errors.js';
import type { SessionSnapshot } from './snapshot.js';
import { LanguageModel } from './language-model.js';
import { loadArtifact, loadManifest } from './model-store.js';
import { createSession, type OrtSession } from './ort.js';
import { TextTokenizer } from './tokenizer.js';
import { PlainDrafter } from './drafters/plain.js';

/** Makes a drafter for ONE session (called once per session and drafter name). Share heavy
 *  resources (ORT sessions of draft heads) through engine.artifactSession(), which caches. */
export type DrafterFactory = (engine: Engine) => Promise<Drafter> | Drafter;

export interface EngineOptions {
  drafters?: Record<string, DrafterFactory>;
  /** Tokens per prefill run (bounds the [S, V] logits buffer in the wasm heap). Default 128. */
  prefillChunk?: number;
  /** Context limit in tokens (prompt + completion); default and maximum: config.max_seq_len. */
  maxContext?: number;
}

export class Engine implements EngineCore {
  readonly manifest: Manifest;
  readonly config: ModelConfig;
  readonly tokenizer: TextTokenizer;
  readonly model: LanguageModel;
  readonly source: ShardSource;
  /** Max tokens in a sequence (prompt + completion). */
  readonly maxContext: number;
  /** sha256 of the base model file (identifies the model in snapshots). */
  readonly modelId: string;
  /**
   * Tokens that end a completion: eos_id, and bos_id too — documents in the training corpus are
   * separated by `<s>`, so generating it means "this document is over".
   */
  readonly stopTokens: ReadonlySet<number>;
  readonly prefillChunk: number;
  private factories = new Map<string, DrafterFactory>();
  private artifacts = new Map<string, Promise<Uint8Array>>();
  private sessions = new Map<string, Promise<OrtSession>>();

  private constructor(
    source: ShardSource,
    manifest: Manifest,
    tokenizer: TextTokenizer,
    model: LanguageModel,
    opts: EngineOptions,
  ) {
    this.source = source;
    this.manifest = manifest;
    this.config = manifest.config;
    this.tokenizer = tokenizer;
    this.model = model;
    this.modelId = manifest.files.base.sha256;
    this.maxContext = Math.min(opts.maxContext ?? Infinity, manifest.config.max_seq_len);
    this.prefillChunk = opts.prefillChunk ?? 128;
    this.stopTokens = new Set([manifest.config.eos_id, manifest.config.bos_id]);
    this.registerDrafter('plain', () => new PlainDrafter());
    for (const [name, f] of Object.entries(opts.drafters ?? {})) this.registerDrafter(name, f);
  }

  /** Fetches and verifies manifest, tokenizer and base model, and creates the ORT session. */
  static async load(source: ShardSource, opts: EngineOptions = {}): Promise<Engine> {
    const manifest = await loadManifest(source);
    const [tokBytes, baseBytes] = await Promise.all([
      loadArtifact(source, manifest, 'tokenizer'),
      loadArtifact(source, manifest, 'base'),
    ]);
    const tokenizer = new TextTokenizer(tokBytes);
    const model = await LanguageModel.create(baseBytes, manifest.config);
    return new Engine(source, manifest, tokenizer, model, opts);
  }

  registerDrafter(name: string, factory: DrafterFactory): void {
    this.factories.set(name, factory);
  }

  get drafterNames(): string[] {
    return [...this.factories.keys()];
  }

  /** @internal used by sessions: a fresh drafter instance for one session. */
  async makeDrafter(name: string): Promise<Drafter> {
    const f = this.factories.get(name);
    if (!f) throw new EngineError('unknown_drafter', `unknown drafter "${name}" (have: ${this.drafterNames.join(', ')})`);
    return f(this);
  }

  /** Verified bytes of a manifest artifact (cached; a failed load is retried next time). */
  artifact(name: string): Promise<Uint8Array> {
    let p = this.artifacts.get(name);
    if (!p) {
      p = loadArtifact(this.source, this.manifest, name);
      p.catch(() => this.artifacts.delete(name));
      this.artifacts.set(name, p);
    }
    return p;
  }

  /** An ORT session over a manifest artifact (e.g. "ctc_head"), created once per engine. */
  artifactSession(name: string): Promise<OrtSession> {
    let p = this.sessions.get(name);
    if (!p) {
      p = this.artifact(name).then((bytes) => createSession(bytes));
      p.catch(() => this.sessions.delete(name));
      this.sessions.set(name, p);
    }
    return p;
  }

  /** Prompt ids for a text that starts a document: `<s>` + its tokens. */
  encodePrompt(text: string): number[] {
    return [this.config.bos_id, ...this.tokenizer.encode(text)];
  }

  createSession(): DecodingSession {
    return new DecodingSession(this);
  }

  /** See DecodingSession.restore: with `kv` chunks bit-identical, without recomputed lazily. */
  restoreSession(snapshot: SessionSnapshot, kv?: Iterable<Uint8Array>): DecodingSession {
    return DecodingSession.restore(this, snapshot, kv);
  }
}
