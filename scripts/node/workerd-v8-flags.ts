/**
 * Local workerd with V8 flags. On a machine with 2 CPUs V8 has one background thread, and workerd could
 * stop answering for good, at 100% of a core: a background compile job (Maglev or Sparkplug) waits there
 * for the main thread to collect garbage, while the main thread, after a request, pumps V8's task queue
 * until it is empty, and cppgc's incremental sweeping task keeps posting itself because the concurrent
 * sweep it waits for needs that same background thread. `--single-threaded-gc` sweeps on the main thread
 * alone, which breaks the cycle. Production runs another V8 platform; the flag is for local runs only.
 *
 * miniflare has no option for workerd's `v8Flags`; it starts the binary named by MINIFLARE_WORKERD_PATH,
 * so that is pointed at workerd-v8-flags.sh, which adds the flags to the config and runs the real workerd.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';

export const WORKERD_V8_FLAGS = ['--single-threaded-gc'];

/**
 * The environment that makes miniflare (in this process, or in wrangler dev given this environment) start
 * workerd with WORKERD_V8_FLAGS; empty where MINIFLARE_WORKERD_PATH is already set or there is no bash.
 */
export function workerdV8FlagsEnv(): Record<string, string> {
  if (process.env.MINIFLARE_WORKERD_PATH || process.platform === 'win32') return {};
  // The workerd binary miniflare would start (its own dependency).
  const fromMiniflare = createRequire(createRequire(import.meta.url).resolve('miniflare'));
  const workerd = (fromMiniflare('workerd') as { default: string }).default;
  return {
    MINIFLARE_WORKERD_PATH: join(import.meta.dirname, 'workerd-v8-flags.sh'),
    CTC_WORKERD: workerd,
    CTC_WORKERD_V8_FLAGS: WORKERD_V8_FLAGS.join(' '),
  };
}
