import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { measureSessionMemory } from './sessionMemory';

describe('yarn bench:session-memory', () => {
  it('keeps every session in the memory store and reads one sealed record', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const result = await measureSessionMemory(1000, gc);
    expect(result).toMatchObject({
      sessions: 1000,
      readBack: '10 of 10',
      heapBytesPerSession: expect.any(Number),
    });
    // sealed: `v2.<iv>.<ciphertext>.<tag>` in base64url, longer than the JSON
    expect(result.sealedChars).toBeGreaterThan(result.plainJsonChars);
    expect(result.heapAfterMb).toBeGreaterThanOrEqual(result.heapBeforeMb);
  });
});
