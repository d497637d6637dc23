import { measureSessionMemory, sessionMemoryTable } from './sessionMemory';

describe('yarn bench:session-memory', () => {
  it('keeps every session in the memory store and reads one sealed record', async () => {
    const result = await measureSessionMemory(1000);
    expect(result).toMatchObject({
      sessions: 1000,
      readBack: '10 of 10',
      heapBytesPerSession: expect.any(Number),
    });
    // sealed: `v2.<iv>.<ciphertext>.<tag>` in base64url, longer than the JSON
    expect(result.sealedChars).toBeGreaterThan(result.plainJsonChars);
    expect(result.heapAfterMb).toBeGreaterThanOrEqual(result.heapBeforeMb);
    expect(sessionMemoryTable(result).split('\n')[2]).toMatch(
      /^\| +1000 \| +\d+ \| +\d+ \| +[\d.]+ \/ [\d.]+ \| +-?\d+ \| 10 of 10 +\|$/,
    );
  });
});
