import { readFileSync, writeFileSync } from 'node:fs';

/**
 * A field of /proc/PID/status in MiB (VmHWM: peak resident set since start;
 * VmRSS: now, the sum of RssAnon, heap and stacks, and RssFile, mapped files);
 * undefined once the process is gone.
 */
export function statusMb(pid: number, field: 'VmHWM' | 'VmRSS' | 'RssAnon' | 'RssFile'): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Peak resident memory of a process so far (the kernel's high-water mark), in MiB. */
export const peakRssMb = (pid: number = process.pid) => statusMb(pid, 'VmHWM');

/** Resident memory of a process now, in MiB. */
export const rssMb = (pid: number = process.pid) => statusMb(pid, 'VmRSS');

/**
 * Watches a child's resident memory while it runs: the kernel's VmHWM is
 * exact but vanishes with the process, so the last value read is kept.
 */
export class RssWatcher {
  private peak = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pid: number, intervalMs = 100) {
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  sample(): number {
    this.peak = Math.max(this.peak, peakRssMb(this.pid) ?? 0);
    return this.peak;
  }

  /** Peak so far; stops watching. */
  stop(): number {
    clearInterval(this.timer);
    return this.sample();
  }
}

/**
 * Starts this process's VmHWM over from its resident memory now (Linux's
 * clear_refs), so peakRssMb() measures one stretch of work, not the whole run.
 */
export function resetPeakRss(): void {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    // Not Linux, or not allowed: the peak then covers the process's whole life so far (never less than the truth).
  }
}
