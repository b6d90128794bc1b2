/**
 * The chat template of /v1/chat/completions: plain role-prefixed paragraphs, suited to a small code model
 * that never saw special chat tokens.
 *
 *     System: <system or developer message>
 *
 *     User: <user message>
 *
 *     Assistant: <assistant message>
 *
 *     User: <user message>
 *
 *     Assistant:
 *
 * Every message becomes `Role: content` followed by a blank line; the prompt ends with `Assistant:` (no
 * trailing space, which BPE would turn into a lone space token). Generation stops at the next role line
 * (STOP_SEQUENCES) and the reply's single leading space is dropped, so the next turn's rendering starts with
 * exactly the text the session already holds and its KV cache is reused (cached_tokens > 0).
 * If the last message is from the assistant, it is left open (no blank line, no new `Assistant:`): the model
 * continues that reply, which is how a reply cut off by finish_reason "length" is resumed.
 */
import type { ChatMessage } from './schemas';

const ROLE_LABEL: Record<ChatMessage['role'], string> = {
  system: 'System',
  developer: 'System',
  user: 'User',
  assistant: 'Assistant',
};

export const ASSISTANT_PREFIX = 'Assistant:';
export const STOP_SEQUENCES = ['\nUser:', '\nSystem:'];

export function messageText(m: ChatMessage): string {
  if (m.content === null) return '';
  if (typeof m.content === 'string') return m.content;
  return m.content.map((p) => p.text).join('');
}

export function renderChat(messages: ChatMessage[]): string {
  let out = '';
  messages.forEach((m, i) => {
    const last = i === messages.length - 1;
    const text = messageText(m);
    if (last && m.role === 'assistant') {
      out += `${ROLE_LABEL.assistant}:${text ? ' ' + text : ''}`;
    } else {
      out += `${ROLE_LABEL[m.role]}: ${text}\n\n`;
    }
  });
  if (messages[messages.length - 1].role !== 'assistant') out += ASSISTANT_PREFIX;
  return out;
}

/** Strip the single space the model emits after `Assistant:` (only at the very start of a reply). */
export function trimReplyStart(text: string, isStart: boolean): string {
  return isStart && text.startsWith(' ') ? text.slice(1) : text;
}
