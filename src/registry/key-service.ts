import { runInScope, systemScope } from '../audit/audit-scope.js';
import type { Clock } from '../core/clock.js';
import type { DataKey } from '../core/domain.js';
import { StrongroomError } from '../core/errors.js';
import { newId, type DataKeyId } from '../core/ids.js';
import { Keyring } from '../crypto/keyring.js';
import type { MetadataStore, MetadataWriter } from '../storage/metadata-store.js';

export interface RotationResult {
  readonly kekVersion: number;
  readonly rewrapped: number;
  readonly destroyedVersions: readonly number[];
}

export interface KeyVersionInfo {
  readonly version: number;
  readonly createdAt: string;
  readonly state: 'current' | 'retired' | 'destroyed';
  readonly dataKeys: number;
}

const REWRAP_BATCH = 500;

/**
 * Envelope encryption over the metadata store (DESIGN.md section 4): one place creates, unwraps, rotates and
 * rewraps data keys. Rewrap is a resumable sweep of compare-and-set updates, so a crash at any point leaves
 * every DEK wrapped by some live KEK and re-running converges (G4). A KEK is destroyed only inside a
 * transaction that sees no DEK still wrapped by it.
 */
export class KeyService {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly store: MetadataStore,
    private readonly masterKey: Buffer,
    private keyring: Keyring,
    private readonly clock: Clock,
  ) {}

  /** Loads the KEKs (creating version 1 on a new data directory) and proves the master key unwraps them. */
  static async open(store: MetadataStore, masterKey: Buffer, clock: Clock): Promise<KeyService> {
    let keks = await store.listKeks();
    if (keks.length === 0) {
      const first = Keyring.newKekRecord(masterKey, 1, clock.now().toISOString());
      await store.transaction(async (tx) => {
        if ((await tx.listKeks()).length === 0) await tx.insertKek(first);
      });
      keks = await store.listKeks();
    }
    return new KeyService(store, masterKey, Keyring.create(masterKey, keks), clock);
  }

  get currentVersion(): number {
    return this.keyring.currentVersion;
  }

  /**
   * A fresh DEK, recorded in `tx`. The KEK list is re-read inside the transaction so a DEK is never wrapped by
   * a KEK that another instance has already retired.
   */
  async createDataKey(tx: MetadataWriter): Promise<{ readonly id: DataKeyId; readonly dek: Buffer }> {
    const latest = Math.max(
      ...(await tx.listKeks()).filter((k) => k.destroyedAt === null).map((k) => k.version),
    );
    if (latest !== this.keyring.currentVersion)
      this.keyring = Keyring.create(this.masterKey, await tx.listKeks());
    const id = newId('datakey');
    const { dek, wrapped, kekVersion } = this.keyring.newDataKey(id);
    const record: DataKey = { id, wrapped, kekVersion, createdAt: this.clock.now().toISOString() };
    await tx.insertDataKey(record);
    return { id, dek };
  }

  /** The plaintext DEK of a stored data key; `key_unavailable` once it was destroyed (crypto-shredding). */
  async unwrap(id: DataKeyId): Promise<Buffer> {
    const key = await this.store.getDataKey(id);
    if (!key) throw new StrongroomError('key_unavailable', 'the data key of this object no longer exists');
    if (!this.keyring.has(key.kekVersion)) {
      // Another instance may have rotated since we loaded the keyring.
      this.keyring = Keyring.create(this.masterKey, await this.store.listKeks());
    }
    return this.keyring.unwrapDataKey(id, key.wrapped);
  }

  async listVersions(): Promise<{ readonly current: number; readonly versions: readonly KeyVersionInfo[] }> {
    const [keks, counts] = await Promise.all([this.store.listKeks(), this.store.countDataKeysByKek()]);
    const current = Math.max(...keks.filter((k) => k.destroyedAt === null).map((k) => k.version));
    const versions = keks.map((k) => ({
      version: k.version,
      createdAt: k.createdAt,
      state:
        k.destroyedAt !== null
          ? ('destroyed' as const)
          : k.version === current
            ? ('current' as const)
            : ('retired' as const),
      dataKeys: counts.get(k.version) ?? 0,
    }));
    return { current, versions };
  }

  /** Makes a new KEK current, rewraps every DEK under it, then destroys the KEKs nothing uses any more. */
  async rotate(): Promise<RotationResult> {
    return this.exclusive(async () => {
      const record = this.keyring.rotate(this.clock.now().toISOString());
      await this.store.transaction((tx) => tx.insertKek(record));
      return this.sweep();
    });
  }

  /** Resumable sweep: every DEK below the current KEK is rewrapped; finished KEKs are destroyed. */
  rewrapAll(): Promise<RotationResult> {
    return this.exclusive(() => this.sweep());
  }

  /** Rotations and sweeps run one at a time in this process. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async sweep(): Promise<RotationResult> {
    const target = this.keyring.currentVersion;
    let rewrapped = 0;
    for (;;) {
      const batch = await this.store.listDataKeysBelow(target, REWRAP_BATCH);
      if (batch.length === 0) break;
      let n = 0;
      const scope = systemScope('key:rewrap', `kek/${target}`, () =>
        n === 0 ? null : { kekVersion: target, rewrapped: n },
      );
      const changed = await runInScope(scope, () =>
        this.store.transaction(async (tx) => {
          n = 0;
          for (const key of batch) {
            const wrapped = this.keyring.rewrapDataKey(key.id, key.wrapped);
            if (await tx.rewrapDataKey(key.id, wrapped, target, key.kekVersion)) n++;
          }
          return n;
        }),
      );
      rewrapped += changed;
    }
    const destroyedVersions = await this.destroyUnusedKeks(target);
    return { kekVersion: target, rewrapped, destroyedVersions };
  }

  private async destroyUnusedKeks(current: number): Promise<number[]> {
    const out: number[] = [];
    const scope = systemScope('key:destroy', null, () =>
      out.length === 0 ? null : { kekVersions: out.join(',') },
    );
    const destroyed = await runInScope(scope, () =>
      this.store.transaction(async (tx) => {
        out.length = 0;
        const counts = await tx.countDataKeysByKek();
        for (const kek of await tx.listKeks()) {
          if (kek.version >= current || kek.destroyedAt !== null || (counts.get(kek.version) ?? 0) > 0)
            continue;
          await tx.destroyKek(kek.version, this.clock.now().toISOString());
          out.push(kek.version);
        }
        return [...out];
      }),
    );
    for (const v of destroyed) this.keyring.forget(v);
    return destroyed;
  }

  /** Whether a rewrap was interrupted (a DEK is still below the current KEK). */
  async rewrapPending(): Promise<boolean> {
    return (await this.store.listDataKeysBelow(this.keyring.currentVersion, 1)).length > 0;
  }
}
