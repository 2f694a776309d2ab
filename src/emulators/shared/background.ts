/**
 * An emulator's background work (a server booting, an action taking its delay): tracked so that
 * closing the emulator ends every delay at once and waits for the work under way.
 */
export class BackgroundWork {
  private readonly tasks = new Set<Promise<void>>();
  private readonly closing = new AbortController();

  constructor(private readonly onError: (err: unknown) => void) {}

  get closed(): boolean {
    return this.closing.signal.aborted;
  }

  /** Runs `work` in the background; its failure goes to onError unless the emulator is closing. */
  track(work: () => Promise<void>): void {
    const task = work().catch((err) => {
      if (!this.closed) this.onError(err);
    });
    this.tasks.add(task);
    void task.finally(() => this.tasks.delete(task));
  }

  /** A delay that ends early when the emulator closes. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (ms <= 0 || this.closed) return resolve();
      const onAbort = () => (clearTimeout(timer), resolve());
      const timer = setTimeout(() => {
        this.closing.signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      this.closing.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Drops a machine's SSH sessions `afterMs` after the first one opens (the sshDrop fault). */
  dropSshLater(machines: { sshSessionCount(id: string): Promise<number>; dropSsh(id: string): Promise<number> }, machineId: () => string | undefined, afterMs: number, fired: () => void): void {
    this.track(async () => {
      while (machineId() && !this.closed) {
        if ((await machines.sshSessionCount(machineId()!)) > 0) {
          await this.sleep(afterMs);
          const id = machineId();
          if (!id) return;
          fired();
          await machines.dropSsh(id);
          return;
        }
        await this.sleep(100);
      }
    });
  }

  async close(): Promise<void> {
    this.closing.abort();
    while (this.tasks.size) await Promise.allSettled([...this.tasks]);
  }
}
