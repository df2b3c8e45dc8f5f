namespace AspireAi.AppHost.Publishing;

/// <summary>
/// A horizontal scaling rule on a Prometheus query: replicas = ceil(query / threshold), within [min, max]. KEDA's
/// Prometheus scaler reads it as is (Helm chart); Container Apps scale on concurrent HTTP requests instead (docs/deploy.md).
/// </summary>
internal sealed record Autoscaling(string Metric, string Query, int Threshold, int MinReplicas, int MaxReplicas)
{
    /// <summary>
    /// Inference on its queue: requests waiting for a place in the running batch, summed over replicas. A replica with
    /// continuous batching already serves its running batch at full speed; what waits beyond that only adds latency, so
    /// a few waiting requests per replica (default 4) is the signal to add one.
    /// </summary>
    public static Autoscaling QueueDepth(string service, int waitingPerReplica = 4, int maxReplicas = 4) =>
        new("vllm:num_requests_waiting", $"sum(vllm:num_requests_waiting{{job=\"{service}\"}})", waitingPerReplica, 1, maxReplicas);

    /// <summary>
    /// The gateway on its request rate (ASP.NET Core's <c>http.server.request.duration</c> count, per second over a
    /// minute). The gateway is I/O-bound proxying; 50 requests/s per replica is a starting point to tune with a load test.
    /// </summary>
    public static Autoscaling RequestRate(string service, int requestsPerSecondPerReplica = 50, int maxReplicas = 10) =>
        new("http_server_request_duration_seconds_count",
            $"sum(rate(http_server_request_duration_seconds_count{{job=\"{service}\"}}[1m]))",
            requestsPerSecondPerReplica, 1, maxReplicas);
}
