/**
 * Modelled time: a discrete-event clock. Work that "takes" time (an AWS request's modelled latency, a
 * service's own sleep) waits on `sleep`, which never waits for real: when every piece of work in
 * progress is waiting (the microtask queue has drained, which `setImmediate` tells), time jumps to the
 * earliest wake-up and that work goes on. Work that runs side by side (a promise pool, Lambda
 * invocations at once) therefore overlaps in modelled time exactly as its code lets it.
 *
 * Nothing the bench runs may wait on a real timer or real I/O while modelled time is in use: it
 * would be taken for finished work.
 */

interface Wake {
  readonly at: number;
  readonly order: number;
  readonly resolve: () => void;
}

/** A binary min-heap of wake-ups by time, then by the order they were asked for. */
class WakeHeap {
  private readonly items: Wake[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): Wake | undefined {
    return this.items[0];
  }

  push(wake: Wake): void {
    const items = this.items;
    items.push(wake);
    let index = items.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!before(items[index]!, items[parent]!)) break;
      [items[index], items[parent]] = [items[parent]!, items[index]!];
      index = parent;
    }
  }

  pop(): Wake | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last) {
      items[0] = last;
      let index = 0;
      for (;;) {
        const left = index * 2 + 1;
        const right = left + 1;
        let smallest = index;
        if (left < items.length && before(items[left]!, items[smallest]!)) smallest = left;
        if (right < items.length && before(items[right]!, items[smallest]!)) smallest = right;
        if (smallest === index) break;
        [items[index], items[smallest]] = [items[smallest]!, items[index]!];
        index = smallest;
      }
    }
    return top;
  }
}

function before(a: Wake, b: Wake): boolean {
  return a.at < b.at || (a.at === b.at && a.order < b.order);
}

export class VirtualTime {
  private current = 0;
  private order = 0;
  private readonly wakes = new WakeHeap();
  private pumping = false;

  /** @param onAdvance told of every step forward (the bench moves the fake account's clock with it) */
  constructor(private readonly onAdvance: (ms: number) => void = () => undefined) {}

  /** Modelled milliseconds since this clock started. */
  get now(): number {
    return this.current;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wakes.push({ at: this.current + Math.max(0, ms), order: this.order++, resolve });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.pumping) return;
    this.pumping = true;
    setImmediate(this.pump);
  }

  /** Everything runnable has run: wake whatever is due first (and all due at that same instant). */
  private readonly pump = (): void => {
    this.pumping = false;
    const first = this.wakes.pop();
    if (!first) return;
    if (first.at > this.current) {
      this.onAdvance(first.at - this.current);
      this.current = first.at;
    }
    first.resolve();
    while (this.wakes.size > 0 && this.wakes.peek()!.at === this.current) this.wakes.pop()!.resolve();
    if (this.wakes.size > 0) this.schedule();
  };
}
