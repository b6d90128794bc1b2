/**
 * Worker entry: the Hono app (OpenAI-compatible API) plus the Durable Object classes wrangler binds.
 * See wrangler.toml for bindings and docs/SERVING.md for the API.
 */
import { app } from './app';

export { SessionDO } from './session-do';
export { RateLimiterDO } from './rate-limiter';

export default app;
