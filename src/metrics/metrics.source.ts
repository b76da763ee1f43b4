/**
 * What `/metrics` answers with: this process's registry, or in cluster mode
 * the whole process group's (ClusterMetricsSource).
 */
export abstract class MetricsSource {
  abstract scrape(): Promise<string>;
}
