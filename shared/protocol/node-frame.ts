import { SwitchboardError } from '../errors.ts';
import { describeValue, parseJsonMessage } from './json-message.ts';
import { NODE_FRAME_TYPES, type NodeFrameType } from './node-messages.ts';

const FRAME_TYPES = new Set<string>(NODE_FRAME_TYPES);

/**
 * A node's WebSocket frame, parsed and typed by its `type` (one of NODE_FRAME_TYPES); its body
 * is validated by the handler of that type. INVALID_MESSAGE names what is wrong.
 */
export function parseNodeFrame(text: string): { type: NodeFrameType; body: Record<string, unknown> } {
  const value = parseJsonMessage(text, 'frame');
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SwitchboardError('INVALID_MESSAGE', 'frame must be a JSON object');
  }
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string' || !FRAME_TYPES.has(type)) {
    throw new SwitchboardError(
      'INVALID_MESSAGE',
      `type: expected one of ${NODE_FRAME_TYPES.join(', ')}, got ${describeValue(type)}`,
    );
  }
  return { type: type as NodeFrameType, body: value as Record<string, unknown> };
}
