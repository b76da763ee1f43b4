import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

const toMs = (ns: number) => Math.round((ns / 1e6) * 100) / 100;

/**
 * Liveness: the process answers and reports its vitals (uptime, memory, CPU,
 * event-loop delay since the previous check). It never touches the database.
 */
@Injectable()
export class ProcessHealthIndicator implements OnModuleInit, OnModuleDestroy {
  private delay: IntervalHistogram | undefined;
  private lastCpu = process.cpuUsage();
  private lastCpuAt = performance.now();

  constructor(private readonly health: HealthIndicatorService) {}

  onModuleInit(): void {
    this.delay = monitorEventLoopDelay({ resolution: 10 });
    this.delay.enable();
  }

  onModuleDestroy(): void {
    this.delay?.disable();
  }

  check(key = 'process'): HealthIndicatorResult {
    const memory = process.memoryUsage();
    const now = performance.now();
    const cpu = process.cpuUsage(this.lastCpu);
    const elapsedMs = Math.max(now - this.lastCpuAt, 1);
    this.lastCpu = process.cpuUsage();
    this.lastCpuAt = now;
    const delay = this.delay;
    const eventLoopDelayMs =
      delay === undefined || delay.count === 0
        ? { p50: 0, p99: 0, max: 0 }
        : { p50: toMs(delay.percentile(50)), p99: toMs(delay.percentile(99)), max: toMs(delay.max) };
    delay?.reset();
    return this.health.check(key).up({
      pid: process.pid,
      uptimeSeconds: Math.round(process.uptime()),
      memory: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed, heapTotalBytes: memory.heapTotal },
      cpuPercent: Math.round(((cpu.user + cpu.system) / 1000 / elapsedMs) * 1000) / 10,
      eventLoopDelayMs,
    });
  }
}
