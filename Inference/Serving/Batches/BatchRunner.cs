using System.Text;
using System.Text.Json;
using AspireAi.Inference.Engine;
using AspireAi.ServiceDefaults;

namespace AspireAi.Inference.Serving.Batches;

/// <summary>
/// Runs queued batches in the engine's idle capacity: every line is a sequence of <see cref="RequestPriority.Batch"/>
/// priority, so the scheduler admits it only behind interactive requests and preempts it first. A bounded number of lines is
/// in flight at once (the engine's sequence cap), so a large batch never fills the waiting queue that interactive requests
/// need. Each finished line's result is appended to the batch's results file at once (<see cref="BatchStore"/>); a batch
/// resumed after a restart runs only the lines without a result. At the end the results become an output file (and failures
/// an error file) in OpenAI's JSONL shape.
/// </summary>
internal sealed class BatchRunner(BatchStore store, ServedModel model, ILogger<BatchRunner> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await foreach (var job in store.Queue.Reader.ReadAllAsync(stoppingToken))
        {
            try
            {
                await RunAsync(job, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return; // the batch stays in progress on disk and resumes at the next start
            }
            catch (Exception e)
            {
                logger.LogError(e, "Batch {Batch} failed", job.Id);
                Update(job, r =>
                {
                    r.Status = "failed";
                    r.FailedAt = Now;
                    r.ErrorMessage = e.Message;
                });
            }
        }
    }

    private static long Now => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    private void Update(BatchJob job, Action<BatchRecord> change)
    {
        lock (job)
        {
            change(job.Record);
            store.Save(job);
        }
    }

    private readonly record struct ResultSummary(string? CustomId, bool Succeeded, long PromptTokens, long CompletionTokens);

    /// <summary>A result line's request, whether it succeeded and the tokens its response's <c>usage</c> reports.</summary>
    private static ResultSummary Describe(string resultLine)
    {
        using var document = JsonDocument.Parse(resultLine);
        var root = document.RootElement;
        var response = root.GetProperty("response");
        var succeeded = response.GetProperty("status_code").GetInt32() == 200;
        long prompt = 0, completion = 0;
        if (succeeded && response.GetProperty("body").TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
        {
            prompt = usage.TryGetProperty("prompt_tokens", out var p) ? p.GetInt64() : 0;
            completion = usage.TryGetProperty("completion_tokens", out var c) ? c.GetInt64() : 0;
        }

        return new ResultSummary(root.GetProperty("custom_id").GetString(), succeeded, prompt, completion);
    }

    private async Task RunAsync(BatchJob job, CancellationToken stoppingToken)
    {
        var input = store.Files.Find(job.Record.InputFileId);
        var lines = input is null ? [] : Encoding.UTF8.GetString(store.Files.ReadContent(input)).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var results = store.ReadResults(job);
        var done = new HashSet<string?>(StringComparer.Ordinal);
        var (completed, failed, promptTokens, completionTokens) = (0, 0, 0L, 0L);
        foreach (var result in results)
        {
            var summary = Describe(result);
            done.Add(summary.CustomId);
            completed += summary.Succeeded ? 1 : 0;
            failed += summary.Succeeded ? 0 : 1;
            promptTokens += summary.PromptTokens;
            completionTokens += summary.CompletionTokens;
        }

        var cancelled = false;
        Update(job, r =>
        {
            if (r.Status == "cancelling")
            {
                cancelled = true; // cancelled before it ran, or before a restart: finish with what is done
                return;
            }

            r.Status = "in_progress";
            r.InProgressAt ??= Now;
            r.Total = lines.Length;
            r.Completed = completed;
            r.Failed = failed;
            r.PromptTokens = promptTokens;
            r.CompletionTokens = completionTokens;
        });

        if (!cancelled)
        {
            await RunLinesAsync(job, lines.Where(line => !done.Contains(CustomId(line))).ToList(), stoppingToken);
        }

        Finalize(job);
    }

    private static string? CustomId(string line)
    {
        using var document = JsonDocument.Parse(line); // validated when the file was uploaded
        return document.RootElement.GetProperty("custom_id").GetString();
    }

    private async Task RunLinesAsync(BatchJob job, List<string> lines, CancellationToken stoppingToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, job.Cancellation.Token);
        using var gate = new SemaphoreSlim(Math.Max(1, model.Engine.Options.MaxNumSeqs));
        var tasks = lines.Select(async line =>
        {
            await gate.WaitAsync(linked.Token);
            try
            {
                var (customId, status, body) = await RunLineAsync(job, line, linked.Token);
                // A line cut off by shutdown or cancellation ends as an abort, not a result: it is not recorded (and runs
                // again when the batch resumes).
                linked.Token.ThrowIfCancellationRequested();
                var record = JsonSerializer.Serialize(new
                {
                    id = "batch_req_" + Guid.NewGuid().ToString("N")[..24],
                    custom_id = customId,
                    response = new { status_code = status, request_id = Guid.NewGuid().ToString("N"), body },
                    error = (object?)null,
                }, OpenAi.OpenAiJson.Options);
                var summary = Describe(record);
                lock (job)
                {
                    store.AppendResult(job, record);
                    job.Record.PromptTokens += summary.PromptTokens;
                    job.Record.CompletionTokens += summary.CompletionTokens;
                    if (status == 200)
                    {
                        job.Record.Completed++;
                    }
                    else
                    {
                        job.Record.Failed++;
                    }
                }
            }
            finally
            {
                gate.Release();
            }
        }).ToList();

        try
        {
            await Task.WhenAll(tasks);
        }
        catch (OperationCanceledException) when (job.Cancellation.IsCancellationRequested && !stoppingToken.IsCancellationRequested)
        {
            // Cancelled: what finished is kept (Finalize).
        }
    }

    /// <summary>
    /// Turns the results file into the output and error files and ends the batch. The files' ids follow from the batch's, so
    /// finishing again after a crash in here replaces them rather than adding copies.
    /// </summary>
    private void Finalize(BatchJob job)
    {
        Update(job, r => r.FinalizingAt ??= Now);
        var output = new StringBuilder();
        var errors = new StringBuilder();
        foreach (var line in store.ReadResults(job))
        {
            (Describe(line).Succeeded ? output : errors).Append(line).Append('\n');
        }

        var suffix = job.Id[BatchIds.BatchPrefix.Length..];
        var tenant = job.Record.Tenant;
        var outputFileId = output.Length > 0
            ? store.Files.Put(BatchIds.OutputFilePrefix + suffix, tenant, $"{job.Id}_output.jsonl", "batch_output", Encoding.UTF8.GetBytes(output.ToString())).Id
            : null;
        var errorFileId = errors.Length > 0
            ? store.Files.Put(BatchIds.ErrorFilePrefix + suffix, tenant, $"{job.Id}_error.jsonl", "batch_output", Encoding.UTF8.GetBytes(errors.ToString())).Id
            : null;
        Update(job, r =>
        {
            r.OutputFileId = outputFileId;
            r.ErrorFileId = errorFileId;
            if (job.Cancellation.IsCancellationRequested || r.Status == "cancelling")
            {
                r.Status = "cancelled";
                r.CancelledAt = Now;
            }
            else
            {
                r.Status = "completed";
                r.CompletedAt = Now;
            }
        });
        store.DeleteResults(job);
    }

    private async Task<(string? CustomId, int Status, object Body)> RunLineAsync(BatchJob job, string line, CancellationToken cancellation)
    {
        using var document = JsonDocument.Parse(line); // validated when the batch was created
        var root = document.RootElement;
        var customId = root.GetProperty("custom_id").GetString();
        var body = root.GetProperty("body");
        var (status, result) = job.Record.Endpoint == "/v1/chat/completions"
            ? await ChatCompletionsEndpoints.RunAsync(model, body, "batch", RequestPriority.Batch, cancellation)
            : await CompletionsEndpoints.RunAsync(model, body, "batch", RequestPriority.Batch, cancellation);
        return (customId, status, result);
    }
}
