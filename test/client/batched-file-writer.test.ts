import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BatchedFileWriter, type FileSink } from '../../src/client/batched-file-writer.js';

/** A file in memory whose writes take at most `most` bytes each and report how many run at once. */
function memoryFile(most = Number.MAX_SAFE_INTEGER) {
  const bytes = Buffer.alloc(8 * 1024 * 1024);
  let end = 0;
  let running = 0;
  let maxRunning = 0;
  const sink: FileSink = {
    async writev(buffers, position) {
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      await new Promise((resolve) => setTimeout(resolve, 1));
      let written = 0;
      for (const buffer of buffers) {
        const take = Math.min(buffer.length, most - written);
        buffer.copy(bytes, position + written, 0, take);
        written += take;
        if (written === most) break;
      }
      end = Math.max(end, position + written);
      running -= 1;
      return { bytesWritten: written };
    },
  };
  return { sink, contents: () => bytes.subarray(0, end), maxRunning: () => maxRunning };
}

function chunks(total: number): Buffer[] {
  const out: Buffer[] = [];
  for (let left = total; left > 0;) {
    const size = Math.min(left, 1 + Math.floor(Math.random() * 100_000));
    out.push(randomBytes(size));
    left -= size;
  }
  return out;
}

describe('BatchedFileWriter', () => {
  it('writes every byte in order, with at most one write in flight', async () => {
    const file = memoryFile();
    const writer = new BatchedFileWriter(file.sink);
    const data = chunks(3_500_000);
    for (const chunk of data) await writer.append(chunk);
    await writer.finish();
    expect(file.contents().equals(Buffer.concat(data))).toBe(true);
    expect(file.maxRunning()).toBe(1);
  });

  it('short writes are continued where they stopped', async () => {
    const file = memoryFile(777);
    const writer = new BatchedFileWriter(file.sink);
    const data = chunks(2_500_000);
    for (const chunk of data) await writer.append(chunk);
    await writer.finish();
    expect(file.contents().equals(Buffer.concat(data))).toBe(true);
  });

  it('a failed write is reported by a later append or by finish, never lost', async () => {
    const failing: FileSink = { writev: () => Promise.reject(new Error('EIO: injected')) };
    const writer = new BatchedFileWriter(failing);
    const attempt = async () => {
      for (const chunk of chunks(4_000_000)) await writer.append(chunk);
      await writer.finish();
    };
    await expect(attempt()).rejects.toThrow('EIO: injected');
  });

  it('a write that makes no progress fails instead of looping', async () => {
    const stuck: FileSink = { writev: () => Promise.resolve({ bytesWritten: 0 }) };
    const writer = new BatchedFileWriter(stuck);
    await writer.append(Buffer.alloc(10));
    await expect(writer.finish()).rejects.toThrow('no progress');
  });
});
