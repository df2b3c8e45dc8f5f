using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using AspireAi.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace AspireAi.Inference.Serving.Batches;

/// <summary>What is saved of a batch (its JSON record on disk).</summary>
internal sealed record BatchRecord
{
    public required string Id { get; init; }

    public required string Endpoint { get; init; }

    public required string InputFileId { get; init; }

    public required string CompletionWindow { get; init; }

    /// <summary>The tenant that created the batch (batches stored before tenants were recorded: the default tenant).</summary>
    public string Tenant { get; init; } = TenantHeaders.DefaultTenant;

    /// <summary>The served model the batch runs on.</summary>
    public string? Model { get; init; }

    public IReadOnlyDictionary<string, string>? Metadata { get; init; }

    public long CreatedAt { get; init; }

    public string Status { get; set; } = "validating";

    public int Total { get; set; }

    public int Completed { get; set; }

    public int Failed { get; set; }

    /// <summary>Prompt tokens of the requests that succeeded, summed from their responses' <c>usage</c>.</summary>
    public long PromptTokens { get; set; }

    /// <summary>Completion tokens of the requests that succeeded.</summary>
    public long CompletionTokens { get; set; }

    public string? OutputFileId { get; set; }

    public string? ErrorFileId { get; set; }

    public string? ErrorMessage { get; set; }

    public long? InProgressAt { get; set; }

    public long? FinalizingAt { get; set; }

    public long? CompletedAt { get; set; }

    public long? FailedAt { get; set; }

    public long? CancellingAt { get; set; }

    public long? CancelledAt { get; set; }
}

/// <summary>One OpenAI batch: its record (mutated by the runner and the endpoints under the job's lock, then saved).</summary>
internal sealed class BatchJob(BatchRecord record)
{
    public BatchRecord Record { get; } = record;

    public string Id => Record.Id;

    public CancellationTokenSource Cancellation { get; } = new();

    /// <summary>Whether the batch still has work (or a cancellation) to carry out: these are resumed after a restart.</summary>
    public bool IsUnfinished => Record.Status is "validating" or "in_progress" or "finalizing" or "cancelling";

    public string SortKey => BatchIds.SortKey(Id, Record.CreatedAt);

    public object ToJson()
    {
        lock (this)
        {
            var r = Record;
            return new
            {
                id = r.Id,
                @object = "batch",
                endpoint = r.Endpoint,
                errors = r.ErrorMessage is null ? null
                    : new { @object = "list", data = new[] { new { code = "server_error", message = r.ErrorMessage, param = (string?)null, line = (int?)null } } },
                input_file_id = r.InputFileId,
                completion_window = r.CompletionWindow,
                status = r.Status,
                output_file_id = r.OutputFileId,
                error_file_id = r.ErrorFileId,
                created_at = r.CreatedAt,
                in_progress_at = r.InProgressAt,
                expires_at = r.CreatedAt + 24 * 3600,
                finalizing_at = r.FinalizingAt,
                completed_at = r.CompletedAt,
                failed_at = r.FailedAt,
                expired_at = (long?)null,
                cancelling_at = r.CancellingAt,
                cancelled_at = r.CancelledAt,
                request_counts = new { total = r.Total, completed = r.Completed, failed = r.Failed },
                metadata = r.Metadata,
                model = r.Model,
                // OpenAI's batch usage: the tokens of the requests that succeeded so far (the gateway charges them to the key).
                usage = new
                {
                    input_tokens = r.PromptTokens,
                    input_tokens_details = new { cached_tokens = 0 },
                    output_tokens = r.CompletionTokens,
                    output_tokens_details = new { reasoning_tokens = 0 },
                    total_tokens = r.PromptTokens + r.CompletionTokens,
                },
            };
        }
    }
}

/// <summary>
/// Batches and their files, kept under the state folder (<c>--state-dir</c>) so a restart loses nothing: <c>files/</c> (see
/// <see cref="FileStore"/>), <c>batches/{id}.json</c> (the record, rewritten atomically on every status change) and
/// <c>batches/{id}.results.jsonl</c> (one line per finished request, appended as each finishes). On start every batch is
/// listed again and the unfinished ones are queued for the runner, which skips the requests whose results are already there.
/// The folder also keeps this replica's tag (<c>replica-tag</c>, made on first start), which every id it makes carries
/// (<see cref="BatchIds"/>): the tag belongs to the state, so it stays with the files and batches across restarts.
/// Lookups by callers name their tenant and see only that tenant's batches (the gateway sends the authenticated tenant).
/// </summary>
internal sealed class BatchStore
{
    private readonly ConcurrentDictionary<string, BatchJob> _batches = new(StringComparer.Ordinal);
    private readonly string _directory;

    public BatchStore(IOptions<InferenceOptions> options, ILogger<BatchStore> logger)
    {
        var state = options.Value.ResolvedStateDir;
        Directory.CreateDirectory(state);
        ReplicaTag = ReadOrCreateReplicaTag(Path.Combine(state, "replica-tag"));
        Files = new FileStore(Path.Combine(state, "files"), ReplicaTag, logger);
        _directory = Path.Combine(state, "batches");
        Directory.CreateDirectory(_directory);
        foreach (var path in Directory.EnumerateFiles(_directory, "*.json").Order(StringComparer.Ordinal))
        {
            try
            {
                var record = JsonSerializer.Deserialize<BatchRecord>(File.ReadAllBytes(path)) ?? throw new InvalidDataException("the record is null");
                _batches[record.Id] = new BatchJob(record);
            }
            catch (Exception e) when (e is JsonException or InvalidDataException or IOException)
            {
                logger.LogWarning("Skipping stored batch {Path}: {Problem}", path, e.Message);
            }
        }

        foreach (var path in Directory.EnumerateFiles(_directory).Where(AtomicFile.IsTemporary))
        {
            File.Delete(path);
        }

        var unfinished = _batches.Values.Where(b => b.IsUnfinished).OrderBy(b => b.Record.CreatedAt).ToList();
        foreach (var job in unfinished)
        {
            Queue.Writer.TryWrite(job);
        }

        logger.LogInformation("Batch state in {Directory} (replica {Replica}): {Files} files, {Batches} batches ({Unfinished} to resume)",
            state, ReplicaTag, Files.All.Count(), _batches.Count, unfinished.Count);
    }

    /// <summary>The tag in every id this replica makes (<see cref="BatchIds"/>).</summary>
    public string ReplicaTag { get; }

    private static string ReadOrCreateReplicaTag(string path)
    {
        if (File.Exists(path))
        {
            var stored = File.ReadAllText(path).Trim();
            return BatchIds.IsReplicaTag(stored)
                ? stored
                : throw new InvalidDataException($"{path} holds '{stored}', not a replica tag (8 lower-case hex digits); delete it to make a new one.");
        }

        var tag = BatchIds.NewReplicaTag();
        AtomicFile.Write(path, Encoding.ASCII.GetBytes(tag));
        return tag;
    }

    public FileStore Files { get; }

    public Channel<BatchJob> Queue { get; } = Channel.CreateUnbounded<BatchJob>();

    public BatchJob Add(string tenant, string model, string endpoint, string inputFileId, string completionWindow,
        IReadOnlyDictionary<string, string>? metadata)
    {
        var job = new BatchJob(new BatchRecord
        {
            Id = BatchIds.New(BatchIds.BatchPrefix, ReplicaTag, DateTimeOffset.UtcNow),
            Tenant = tenant,
            Model = model,
            Endpoint = endpoint,
            InputFileId = inputFileId,
            CompletionWindow = completionWindow,
            Metadata = metadata,
            CreatedAt = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
        });
        Save(job);
        _batches[job.Id] = job;
        Queue.Writer.TryWrite(job);
        return job;
    }

    /// <summary>The batch <paramref name="id"/> if <paramref name="tenant"/> owns it; another tenant's batch is answered as missing.</summary>
    public BatchJob? Get(string id, string tenant) => _batches.GetValueOrDefault(id) is { } job && job.Record.Tenant == tenant ? job : null;

    public IEnumerable<BatchJob> Of(string tenant) => _batches.Values.Where(b => b.Record.Tenant == tenant);

    /// <summary>Writes the job's record (call under the job's lock, after changing it).</summary>
    public void Save(BatchJob job) =>
        AtomicFile.Write(Path.Combine(_directory, job.Id + ".json"), JsonSerializer.SerializeToUtf8Bytes(job.Record));

    /// <summary>
    /// The result lines already written for <paramref name="job"/> (each a complete output or error line). A line cut short
    /// by a crash is dropped from the file, so appending continues on a clean line.
    /// </summary>
    public List<string> ReadResults(BatchJob job)
    {
        var path = ResultsPath(job);
        if (!File.Exists(path))
        {
            return [];
        }

        var bytes = File.ReadAllBytes(path);
        var whole = bytes.AsSpan().LastIndexOf((byte)'\n') + 1;
        if (whole < bytes.Length)
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Write);
            stream.SetLength(whole);
        }

        return Encoding.UTF8.GetString(bytes, 0, whole).Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
    }

    /// <summary>Appends one request's result line, flushed to disk before returning (the request then never runs again).</summary>
    public void AppendResult(BatchJob job, string line)
    {
        using var stream = new FileStream(ResultsPath(job), FileMode.Append, FileAccess.Write);
        stream.Write(Encoding.UTF8.GetBytes(line + "\n"));
        stream.Flush(flushToDisk: true);
    }

    /// <summary>Removes the job's results file once its output and error files hold the results.</summary>
    public void DeleteResults(BatchJob job) => File.Delete(ResultsPath(job));

    private string ResultsPath(BatchJob job) => Path.Combine(_directory, job.Id + ".results.jsonl");
}
