import type { MetadataStore } from '../storage/metadata-store.js';

export interface DeliveryQueueOptions<T> {
  /** Names the persisted position (`delivery.<name>` in settings); keep it stable across restarts. */
  readonly name: string;
  /** The raw metadata store (deliveries are bookkeeping, not audited actions). */
  readonly store: MetadataStore;
  /** Items after `position` in order, at most `limit`; each carries its own position. */
  read(position: number, limit: number): Promise<readonly T[]>;
  positionOf(item: T): number;
  /** Hands items off; throws to have the same batch retried. */
  deliver(items: readonly T[]): Promise<void>;
  readonly batchSize: number;
  readonly retry: { readonly initialMs: number; readonly maxMs: number };
  /** Poll even without a wake-up (another server instance may have appended). */
  readonly pollMs: number;
  onError(err: unknown, attempt: number): void;
}

/**
 * Delivers the audit log (events to a SIEM, checkpoints to outside witnesses) in order and at least once: a batch
 * is retried with exponential back-off until it is handed off, and only then does the position advance and get
 * persisted, so a restart resumes where delivery stopped and nothing is lost or reordered.
 */
export class DeliveryQueue<T> {
  private position = 0;
  private running = false;
  private loop: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private woken = false;
  private stopping = false;

  constructor(private readonly options: DeliveryQueueOptions<T>) {}

  get name(): string {
    return this.options.name;
  }

  /** The position delivered so far. */
  get delivered(): number {
    return this.position;
  }

  private get setting(): string {
    return `delivery.${this.options.name}`;
  }

  async start(): Promise<void> {
    if (this.running) return;
    const saved = await this.options.store.getSetting(this.setting);
    this.position = saved === undefined ? 0 : Number(saved);
    this.running = true;
    this.loop = this.run();
  }

  /** New items may be available. */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /** Delivers what is pending (unless the sink is failing), then stops. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeUp?.();
    await this.loop;
    this.running = false;
  }

  private async run(): Promise<void> {
    let attempt = 0;
    for (;;) {
      this.woken = false;
      let items: readonly T[] = [];
      try {
        items = await this.options.read(this.position, this.options.batchSize);
        if (items.length > 0) {
          await this.options.deliver(items);
          const last = this.options.positionOf(items[items.length - 1] as T);
          await this.options.store.transaction((tx) => tx.setSetting(this.setting, String(last)));
          this.position = last;
          attempt = 0;
          continue;
        }
      } catch (err) {
        attempt++;
        this.options.onError(err, attempt);
        if (this.stopping) return;
        const delay = Math.min(this.options.retry.maxMs, this.options.retry.initialMs * 2 ** (attempt - 1));
        await this.sleep(delay, false);
        continue;
      }
      if (this.stopping) return;
      if (!this.woken) await this.sleep(this.options.pollMs, true);
    }
  }

  /** Waits `ms`, or less when stopped (or woken, if `wakeable`). */
  private sleep(ms: number, wakeable: boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.wakeUp = () => {
        if (wakeable || this.stopping) done();
      };
    });
  }
}
