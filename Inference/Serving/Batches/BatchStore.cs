using System.Collections.Concurrent;
using System.Threading.Channels;

namespace AspireAi.Inference.Serving.Batches;

/// <summary>One OpenAI batch: its state and counts (mutated by the runner under the object's lock).</summary>
internal sealed class BatchJob(string id, string endpoint, string inputFileId, string completionWindow, IReadOnlyDictionary<string, string>? metadata)
{
    public string Id { get; } = id;

    public string Endpoint { get; } = endpoint;

    public string InputFileId { get; } = inputFileId;

    public string Status { get; set; } = "validating";

    public int Total { get; set; }

    public int Completed { get; set; }

    public int Failed { get; set; }

    public string? OutputFileId { get; set; }

    public string? ErrorFileId { get; set; }

    public List<object>? Errors { get; set; }

    public long CreatedAt { get; } = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public long? InProgressAt { get; set; }

    public long? FinalizingAt { get; set; }

    public long? CompletedAt { get; set; }

    public long? FailedAt { get; set; }

    public long? CancellingAt { get; set; }

    public long? CancelledAt { get; set; }

    public CancellationTokenSource Cancellation { get; } = new();

    public object ToJson()
    {
        lock (this)
        {
            return new
            {
                id = Id,
                @object = "batch",
                endpoint = Endpoint,
                errors = Errors is null ? null : new { @object = "list", data = Errors },
                input_file_id = InputFileId,
                completion_window = completionWindow,
                status = Status,
                output_file_id = OutputFileId,
                error_file_id = ErrorFileId,
                created_at = CreatedAt,
                in_progress_at = InProgressAt,
                expires_at = CreatedAt + 24 * 3600,
                finalizing_at = FinalizingAt,
                completed_at = CompletedAt,
                failed_at = FailedAt,
                expired_at = (long?)null,
                cancelling_at = CancellingAt,
                cancelled_at = CancelledAt,
                request_counts = new { total = Total, completed = Completed, failed = Failed },
                metadata,
            };
        }
    }
}

/// <summary>Batches by id, and the queue the runner takes them from (oldest first).</summary>
internal sealed class BatchStore
{
    private readonly ConcurrentDictionary<string, BatchJob> _batches = new(StringComparer.Ordinal);

    public FileStore Files { get; } = new();

    public Channel<BatchJob> Queue { get; } = Channel.CreateUnbounded<BatchJob>();

    public BatchJob Add(string endpoint, string inputFileId, string completionWindow, IReadOnlyDictionary<string, string>? metadata)
    {
        var job = new BatchJob("batch_" + Guid.NewGuid().ToString("N")[..24], endpoint, inputFileId, completionWindow, metadata);
        _batches[job.Id] = job;
        Queue.Writer.TryWrite(job);
        return job;
    }

    public BatchJob? Get(string id) => _batches.GetValueOrDefault(id);

    public IEnumerable<BatchJob> All => _batches.Values.OrderByDescending(b => b.CreatedAt);
}
