import { Metrics } from '../http/metrics';

/** Why a component restarted: the `reason` label of cdc_component_restarts_total. */
export type RestartReason = 'connection_lost' | 'liveness_timeout' | 'stalled' | 'slot_lost' | 'error';

/**
 * An error that ends a component's attempt for a known reason. Connectors
 * throw it (or set `reason` on their error) so restarts are counted by cause.
 */
export class AttemptFailure extends Error {
  constructor(message: string, readonly reason: RestartReason, options?: { cause?: unknown }) {
    super(message, options);
  }
}

const CONNECTION_LOST =
  /ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|EHOSTUNREACH|Connection terminated|connection (lost|ended|closed)|Connection is closed|terminating connection|not queryable|closed the binlog connection|PROTOCOL_CONNECTION_LOST|shutting down|server has gone away|Lost connection|57P0[1-3]/i;

/** The restart reason of `error`: one set along its cause chain, else guessed from its messages. */
export function restartReason(error: unknown): RestartReason {
  const messages: string[] = [];
  for (let e = error as (Error & { reason?: unknown; code?: unknown }) | undefined, depth = 0; e && depth < 8; e = e.cause as typeof e, depth++) {
    const reason = e.reason as RestartReason;
    if (['connection_lost', 'liveness_timeout', 'stalled', 'slot_lost', 'error'].includes(reason)) return reason;
    messages.push(`${String(e.message ?? e)} ${String(e.code ?? '')}`);
  }
  return CONNECTION_LOST.test(messages.join(' ')) ? 'connection_lost' : 'error';
}

export interface HealthStatus {
  /** `up`: streaming (source) or connected and applying (sink). */
  state: 'starting' | 'up' | 'reconnecting' | 'stopped';
  /** When the current state began (ISO-8601). */
  since: string;
  /** Failed attempts since the component was last up. */
  attempt: number;
  lastError: string | null;
}

/**
 * The health of one source or sink, as /readyz, `cdc status` and the
 * cdc_*_up and cdc_component_restarts_total metrics report it.
 */
export class ComponentHealth {
  private current: HealthStatus = { state: 'starting', since: new Date().toISOString(), attempt: 0, lastError: null };
  private ownsGauge: boolean;

  /** `ownsGauge` false: a second runner of the component (a sink generation being rebuilt) leaves cdc_*_up alone. */
  constructor(private readonly kind: 'source' | 'sink', private readonly name: string, private readonly metrics: Metrics, ownsGauge = true) {
    this.ownsGauge = ownsGauge;
    this.gauge(0);
  }

  /** Hands cdc_*_up to this instance (a rebuilt generation went live). */
  takeGauge(): void {
    this.ownsGauge = true;
    this.gauge(this.isUp ? 1 : 0);
  }

  get isUp(): boolean {
    return this.current.state === 'up';
  }

  up(): void {
    if (this.current.state !== 'up') this.current = { state: 'up', since: new Date().toISOString(), attempt: 0, lastError: this.current.lastError };
    this.gauge(1);
  }

  /** The attempt failed and the component will try again: counted as a restart. */
  failed(error: unknown): RestartReason {
    const reason = restartReason(error);
    this.down((error as Error)?.message ?? String(error), true);
    this.metrics.componentRestarts.inc({ component: `${this.kind} ${this.name}`, reason });
    return reason;
  }

  /** Not working right now (e.g. a write hangs), without a restart. */
  degraded(problem: string): void {
    this.down(problem, false);
  }

  stopped(): void {
    this.current = { ...this.current, state: 'stopped', since: new Date().toISOString() };
    this.gauge(0);
  }

  status(): HealthStatus {
    return { ...this.current };
  }

  /** One line for /readyz. */
  describe(): string {
    const { state, since, attempt, lastError } = this.current;
    if (state === 'up') return 'up';
    if (state === 'starting' && !lastError) return `starting since ${since}`;
    return `${state === 'stopped' ? 'stopped' : 'reconnecting'} since ${since}${attempt > 0 ? `, attempt ${attempt}` : ''}${lastError ? `, last error: ${lastError}` : ''}`;
  }

  private down(problem: string, attempt: boolean): void {
    const wasDown = this.current.state === 'reconnecting';
    this.current = {
      state: 'reconnecting',
      since: wasDown ? this.current.since : new Date().toISOString(),
      attempt: this.current.attempt + (attempt ? 1 : 0),
      lastError: problem,
    };
    this.gauge(0);
  }

  private gauge(value: number): void {
    if (!this.ownsGauge) return;
    if (this.kind === 'source') this.metrics.sourceUp.set({ source: this.name }, value);
    else this.metrics.sinkUp.set({ sink: this.name }, value);
  }
}
