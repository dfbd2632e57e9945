import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { killHard, removeDir, tempDir } from '../fixtures/strata.js';

describe('strata demo (what npm start runs)', () => {
  let dir: string;
  afterEach(async () => removeDir(dir));

  it('serves the example project and its traffic fills the clicks stream', async () => {
    dir = await tempDir();
    const child = spawn(process.execPath, ['bin/strata.js', 'demo', '--port', '0', '--pg-port', '0', '--data', dir, '--rate', '2000'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout }).on('line', (line) => {
          const match = /listening on (http\S+)/.exec(line);
          if (match) resolve(match[1]!);
        });
        child.on('exit', (code) => reject(new Error(`demo exited with ${code}`)));
      });
      let logged = 0;
      for (let i = 0; i < 100 && logged < 500; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        const body = (await (await fetch(`${url}/v1/streams`)).json()) as { streams: { name: string; shards: { lastSeq: string }[] }[] };
        expect(body.streams.map((s) => s.name)).toEqual(['clicks']);
        logged = body.streams[0]!.shards.reduce((sum, shard) => sum + Number(shard.lastSeq), 0);
      }
      expect(logged).toBeGreaterThanOrEqual(500);
      const page = await fetch(`${url}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<td>clicks</td>');
    } finally {
      await killHard(child);
    }
  });
});
