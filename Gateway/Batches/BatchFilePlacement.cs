using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AspireAi.Gateway.Auth;
using AspireAi.Gateway.Routing;

namespace AspireAi.Gateway.Batches;

/// <summary>Where an uploaded batch file goes: the service of the one deployment serving its models, and its content to store.</summary>
internal sealed record BatchFilePlacement(string Service, byte[] Content);

/// <summary>
/// Reads the models an uploaded batch input file asks for (<c>body.model</c> of each line) and decides where it may go: the
/// key must be allowed every model, and one deployment must serve them all, since a batch runs on the replica that holds
/// its file. Aliases are rewritten to the model they stand for (Inference knows only its own model ids). Lines that are not
/// well-formed requests are left for Inference to refuse with its own error naming the line.
/// </summary>
internal sealed class BatchFilePlacer(ModelRouter router, BatchReplicaDirectory directory)
{
    /// <summary>The placement, or the error to answer (status, message, code).</summary>
    public async Task<(BatchFilePlacement? Placement, (int Status, string Message, string Code)? Error)> PlaceAsync(
        Caller caller, byte[] content, CancellationToken ct)
    {
        var lines = Encoding.UTF8.GetString(content).Split('\n');
        var targets = new Dictionary<string, ModelTarget>(StringComparer.Ordinal);
        var rewritten = false;
        for (var i = 0; i < lines.Length; i++)
        {
            if (ModelOf(lines[i]) is not { } model)
            {
                continue;
            }

            if (!targets.TryGetValue(model, out var target))
            {
                var canonical = router.Canonical(model);
                if (!caller.MayUse(model) && !caller.MayUse(canonical))
                {
                    return (null, (403, $"Line {i + 1} of the file asks for the model '{model}', which this key may not use.", "model_not_allowed"));
                }

                var resolved = await router.ResolveAsync(model, ct);
                if (resolved.Count == 0 || resolved[0].Deployment == "agents")
                {
                    return (null, (400, $"Line {i + 1} of the file asks for the model '{model}', which no inference deployment serves. GET /v1/models lists the models served.",
                        "model_not_found"));
                }

                target = targets[model] = resolved[0];
                if (targets.Values.Select(t => t.Service).Distinct().Count() > 1)
                {
                    var first = targets.First();
                    return (null, (400, $"Line {i + 1} of the file asks for the model '{model}' (deployment '{target.Deployment}'), another line for "
                        + $"'{first.Key}' (deployment '{first.Value.Deployment}'): a batch runs on one deployment; upload one file per model.", "invalid_value"));
                }
            }

            if (target.Model != model)
            {
                lines[i] = WithModel(lines[i], target.Model);
                rewritten = true;
            }
        }

        var service = targets.Count > 0 ? targets.Values.First().Service : directory.Services.First();
        return (new BatchFilePlacement(service, rewritten ? Encoding.UTF8.GetBytes(string.Join('\n', lines)) : content), null);
    }

    private static string? ModelOf(string line)
    {
        if (string.IsNullOrWhiteSpace(line))
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(line);
            return document.RootElement is { ValueKind: JsonValueKind.Object } root
                && root.TryGetProperty("body", out var body) && body.ValueKind == JsonValueKind.Object
                && body.TryGetProperty("model", out var model) && model.ValueKind == JsonValueKind.String
                    ? model.GetString()
                    : null;
        }
        catch (JsonException)
        {
            return null; // Inference refuses the file naming this line
        }
    }

    private static string WithModel(string line, string model)
    {
        var request = JsonNode.Parse(line)!.AsObject();
        request["body"]!["model"] = model;
        return request.ToJsonString();
    }
}
