import { describe, expect, it } from 'vitest';
import { isClientFault } from '../../shared/quarantine.ts';

describe('quarantine: whose fault a failed job_result is', () => {
  it("the node's: processing errors, timeouts inside the node, no error at all", () => {
    expect(isClientFault({ code: 'PROCESSING_ERROR', message: 'CUDA out of memory' })).toBe(false);
    expect(isClientFault({ code: 'NODE_ERROR', message: 'the node reported a failure' })).toBe(false);
    expect(isClientFault({ code: 'ASR_TIMEOUT', message: 'model did not answer' })).toBe(false);
    expect(isClientFault(undefined)).toBe(false);
    expect(isClientFault('a string')).toBe(false);
  });

  it("the client's: an invalid, unsupported or duplicate request (the lingua client's DUPLICATE_ messages)", () => {
    expect(isClientFault({ code: 'INVALID_AUDIO', message: 'not opus' })).toBe(true);
    expect(isClientFault({ code: 'invalid_input' })).toBe(true);
    expect(isClientFault({ code: 'BAD_REQUEST' })).toBe(true);
    expect(isClientFault({ code: 'UNSUPPORTED_LANGUAGE' })).toBe(true);
    expect(
      isClientFault({
        code: 'PROCESSING_ERROR',
        message:
          'DUPLICATE_UTTERANCE_INDEX: another job already accepted for this session_id and utterance_index',
      }),
    ).toBe(true);
  });
});
