using System.Text;
using System.Text.Json;
using AspireAi.Inference.Engine;

namespace AspireAi.Inference.Serving.Batches;

/// <summary>
/// Runs queued batches in the engine's idle capacity: every line is a sequence of <see cref="RequestPriority.Batch"/>
/// priority, so the scheduler admits it only behind interactive requests and preempts it first. A bounded number of lines is
/// in flight at once (the engine's sequence cap), so a large batch never fills the waiting queue that interactive requests
/// need. Results go to an output file (and failures to an error file) in OpenAI's JSONL shape.
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
                return;
            }
            catch (Exception e)
            {
                logger.LogError(e, "Batch {Batch} failed", job.Id);
                lock (job)
                {
                    job.Status = "failed";
                    job.FailedAt = Now;
                    job.Errors = [new { code = "server_error", message = e.Message, param = (string?)null, line = (int?)null }];
                }
            }
        }
    }

    private static long Now => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    private async Task RunAsync(BatchJob job, CancellationToken stoppingToken)
    {
        var input = store.Files.Get(job.InputFileId);
        var lines = input is null ? [] : Encoding.UTF8.GetString(input.Content).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        lock (job)
        {
            if (job.Status == "cancelling")
            {
                job.Status = "cancelled";
                job.CancelledAt = Now;
                return;
            }

            job.Status = "in_progress";
            job.InProgressAt = Now;
            job.Total = lines.Length;
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, job.Cancellation.Token);
        var output = new StringBuilder();
        var errors = new StringBuilder();
        using var gate = new SemaphoreSlim(Math.Max(1, model.Engine.Options.MaxNumSeqs));
        var tasks = lines.Select(async line =>
        {
            await gate.WaitAsync(linked.Token);
            try
            {
                var (customId, status, body) = await RunLineAsync(job, line, linked.Token);
                var record = JsonSerializer.Serialize(new
                {
                    id = "batch_req_" + Guid.NewGuid().ToString("N")[..24],
                    custom_id = customId,
                    response = new { status_code = status, request_id = Guid.NewGuid().ToString("N"), body },
                    error = (object?)null,
                }, OpenAi.OpenAiJson.Options);
                lock (job)
                {
                    (status == 200 ? output : errors).Append(record).Append('\n');
                    if (status == 200)
                    {
                        job.Completed++;
                    }
                    else
                    {
                        job.Failed++;
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
            // Cancelled: what finished is kept below.
        }

        lock (job)
        {
            job.FinalizingAt = Now;
            if (output.Length > 0)
            {
                job.OutputFileId = store.Files.Add($"{job.Id}_output.jsonl", "batch_output", Encoding.UTF8.GetBytes(output.ToString())).Id;
            }

            if (errors.Length > 0)
            {
                job.ErrorFileId = store.Files.Add($"{job.Id}_error.jsonl", "batch_output", Encoding.UTF8.GetBytes(errors.ToString())).Id;
            }

            if (job.Cancellation.IsCancellationRequested)
            {
                job.Status = "cancelled";
                job.CancelledAt = Now;
            }
            else
            {
                job.Status = "completed";
                job.CompletedAt = Now;
            }
        }
    }

    private async Task<(string? CustomId, int Status, object Body)> RunLineAsync(BatchJob job, string line, CancellationToken cancellation)
    {
        using var document = JsonDocument.Parse(line); // validated when the batch was created
        var root = document.RootElement;
        var customId = root.GetProperty("custom_id").GetString();
        var body = root.GetProperty("body");
        var (status, result) = job.Endpoint == "/v1/chat/completions"
            ? await ChatCompletionsEndpoints.RunAsync(model, body, "batch", RequestPriority.Batch, cancellation)
            : await CompletionsEndpoints.RunAsync(model, body, "batch", RequestPriority.Batch, cancellation);
        return (customId, status, result);
    }
}
