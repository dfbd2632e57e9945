import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { syncDirectory, syncFile } from '../../util/durable-fs.js';
import type { ObjectStore } from '../types.js';

/** Keys are relative paths of safe segments: no `..`, no absolute paths, no backslashes. */
const KEY_PATTERN = /^(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9_=.\-/]+$/;

function assertKey(key: string): void {
  if (!KEY_PATTERN.test(key) || key.startsWith('/') || key.startsWith('_staging')) {
    throw new RangeError(`invalid object key ${JSON.stringify(key)}`);
  }
}

/** The default object store: a directory on local disk, `<data>/lake`. */
export class LocalObjectStore implements ObjectStore {
  private readonly staging: string;

  constructor(private readonly root: string) {
    this.staging = join(root, '_staging');
  }

  async init(): Promise<void> {
    await mkdir(this.staging, { recursive: true });
  }

  stagingPath(hint: string): string {
    return join(this.staging, `${hint.replace(/[^A-Za-z0-9_-]/g, '_')}-${randomUUID()}.tmp`);
  }

  async publish(stagingPath: string, key: string): Promise<void> {
    assertKey(key);
    const target = join(this.root, key);
    await syncFile(stagingPath);
    await mkdir(dirname(target), { recursive: true });
    await rename(stagingPath, target);
    await syncDirectory(dirname(target));
  }

  async put(key: string, data: Buffer): Promise<void> {
    const staged = this.stagingPath('put');
    const handle = await open(staged, 'wx');
    try {
      await handle.writeFile(data);
    } finally {
      await handle.close();
    }
    await this.publish(staged, key);
  }

  async get(key: string): Promise<Buffer> {
    assertKey(key);
    return readFile(join(this.root, key));
  }

  async list(prefix: string): Promise<string[]> {
    const start = join(this.root, prefix);
    const keys: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw error;
      }
      for (const entry of entries) {
        const path = join(dir, entry.name);
        if (path === this.staging) continue;
        if (entry.isDirectory()) await walk(path);
        else keys.push(relative(this.root, path).split(sep).join('/'));
      }
    };
    await walk(start);
    return keys.sort();
  }

  async delete(key: string): Promise<void> {
    assertKey(key);
    await rm(join(this.root, key), { force: true });
  }

  location(key: string): string {
    assertKey(key);
    return join(this.root, key);
  }

  async clearStaging(): Promise<void> {
    await rm(this.staging, { recursive: true, force: true });
    await mkdir(this.staging, { recursive: true });
  }
}
