using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace AspireAi.Retrieval.Documents;

/// <summary>
/// What a client submits to <c>POST /v1/collections/{name}/documents</c>: JSON (<c>text</c>, <c>content_base64</c> or
/// <c>url</c>, with optional <c>id</c>, <c>content_type</c>, <c>metadata</c>) or multipart/form-data (a <c>file</c> part,
/// streamed to disk, and the same optional fields as form parts).
/// </summary>
internal sealed record DocumentSubmission(string? Id, string MetadataJson, StagedContent Content) : IAsyncDisposable
{
    public ValueTask DisposeAsync() => Content.DisposeAsync();

    private const int MaxIdLength = 256;

    /// <exception cref="DocumentException">What is wrong with the request, as status, message and field.</exception>
    public static async Task<DocumentSubmission> ReadAsync(HttpRequest request, RetrievalOptions options, IHttpClientFactory http, CancellationToken ct)
    {
        var mediaType = MediaTypeHeaderValue.TryParse(request.ContentType, out var parsed) ? parsed.MediaType.Value : null;
        if (mediaType is "application/json")
        {
            return await FromJsonAsync(request, options, http, ct);
        }

        if (mediaType is "multipart/form-data")
        {
            return await FromMultipartAsync(request, parsed!, options, ct);
        }

        throw new DocumentException(415,
            $"Send the document as application/json ({{\"text\"|\"content_base64\"|\"url\", \"id\"?, \"content_type\"?, \"metadata\"?}}) or multipart/form-data with a 'file' part, not '{request.ContentType}'.");
    }

    private static async Task<DocumentSubmission> FromJsonAsync(HttpRequest request, RetrievalOptions options, IHttpClientFactory http, CancellationToken ct)
    {
        // Base64 is a third larger than the document it carries.
        if (request.ContentLength > options.MaxDocumentBytes * 4 / 3 + 1024 * 1024)
        {
            throw new DocumentException(413, $"The document is larger than the limit of {options.MaxDocumentBytes} bytes (Retrieval:MaxDocumentBytes).");
        }

        using var json = await JsonDocument.ParseAsync(request.Body, cancellationToken: ct);
        var body = json.RootElement;
        if (body.ValueKind != JsonValueKind.Object)
        {
            throw new DocumentException(400, "The request body must be a JSON object.");
        }

        var id = OptionalString(body, "id");
        var declaredType = OptionalString(body, "content_type");
        var metadata = Metadata(body.TryGetProperty("metadata", out var m) ? m : default);
        var sources = new[] { "text", "content_base64", "url" }.Where(p => body.TryGetProperty(p, out var v) && v.ValueKind != JsonValueKind.Null).ToList();
        if (sources.Count != 1)
        {
            throw new DocumentException(400, sources.Count == 0
                ? "Give the document as one of 'text', 'content_base64' or 'url'."
                : $"Give only one of 'text', 'content_base64' or 'url' (got {string.Join(", ", sources)}).", sources.Count == 0 ? "text" : sources[1]);
        }

        StagedContent content;
        switch (sources[0])
        {
            case "text":
                var text = OptionalString(body, "text")!;
                using (var stream = new MemoryStream(Encoding.UTF8.GetBytes(text)))
                {
                    content = await StagedContent.FromStreamAsync(stream, options.MaxDocumentBytes, null, declaredType ?? "text/plain", "text", ct);
                }

                break;
            case "content_base64":
                byte[] bytes;
                try
                {
                    bytes = Convert.FromBase64String(OptionalString(body, "content_base64")!);
                }
                catch (FormatException)
                {
                    throw new DocumentException(400, "'content_base64' is not valid base64.", "content_base64");
                }

                using (var stream = new MemoryStream(bytes))
                {
                    content = await StagedContent.FromStreamAsync(stream, options.MaxDocumentBytes, null, declaredType, "content_base64", ct);
                }

                break;
            default:
                content = await FetchAsync(OptionalString(body, "url")!, declaredType, options, http, ct);
                metadata = metadata.Contains("\"source\"") ? metadata : WithSource(metadata, OptionalString(body, "url")!);
                break;
        }

        return new DocumentSubmission(ValidId(id), metadata, content);
    }

    private static async Task<DocumentSubmission> FromMultipartAsync(HttpRequest request, MediaTypeHeaderValue type, RetrievalOptions options,
        CancellationToken ct)
    {
        var boundary = HeaderUtilities.RemoveQuotes(type.Boundary).Value;
        if (string.IsNullOrEmpty(boundary))
        {
            throw new DocumentException(400, "The multipart/form-data content type has no boundary.");
        }

        var reader = new MultipartReader(boundary, request.Body);
        var fields = new Dictionary<string, string>();
        StagedContent? content = null;
        try
        {
            while (await reader.ReadNextSectionAsync(ct) is { } section)
            {
                if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition) || disposition.Name.Value is not { } name)
                {
                    continue;
                }

                name = HeaderUtilities.RemoveQuotes(name).Value!;
                if (name == "file")
                {
                    if (content is not null)
                    {
                        throw new DocumentException(400, "Send one 'file' part per request.", "file");
                    }

                    var fileName = HeaderUtilities.RemoveQuotes(disposition.FileName).Value;
                    content = await StagedContent.FromStreamAsync(section.Body, options.MaxDocumentBytes, fileName, section.ContentType, "file", ct);
                }
                else
                {
                    using var text = new StreamReader(section.Body, Encoding.UTF8);
                    fields[name] = await text.ReadToEndAsync(ct);
                }
            }

            if (content is null)
            {
                throw new DocumentException(400, "The multipart request has no 'file' part.", "file");
            }

            var metadata = "{}";
            if (fields.TryGetValue("metadata", out var metadataText))
            {
                try
                {
                    using var parsed = JsonDocument.Parse(metadataText);
                    metadata = Metadata(parsed.RootElement);
                }
                catch (JsonException ex)
                {
                    throw new DocumentException(400, $"The 'metadata' part is not valid JSON: {ex.Message}", "metadata");
                }
            }

            var staged = fields.TryGetValue("content_type", out var declared) && declared.Length > 0
                ? content.WithDeclaredType(declared)
                : content;
            return new DocumentSubmission(ValidId(fields.GetValueOrDefault("id")), metadata, staged);
        }
        catch
        {
            if (content is not null)
            {
                await content.DisposeAsync();
            }

            throw;
        }
    }

    private static async Task<StagedContent> FetchAsync(string url, string? declaredType, RetrievalOptions options, IHttpClientFactory http, CancellationToken ct)
    {
        if (!options.AllowUrlFetch)
        {
            throw new DocumentException(400, "Fetching documents by 'url' is disabled here (Retrieval:AllowUrlFetch); send the content instead.", "url");
        }

        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new DocumentException(400, $"'url' must be an absolute http or https URL, not '{url}'.", "url");
        }

        HttpResponseMessage response;
        try
        {
            response = await http.CreateClient("documents").GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, ct);
        }
        catch (HttpRequestException ex)
        {
            throw new DocumentException(400, $"'url' could not be fetched: {ex.Message}", "url");
        }

        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                throw new DocumentException(400, $"'url' answered {(int)response.StatusCode} {response.ReasonPhrase}.", "url");
            }

            await using var body = await response.Content.ReadAsStreamAsync(ct);
            return await StagedContent.FromStreamAsync(body, options.MaxDocumentBytes, uri.AbsolutePath,
                declaredType ?? response.Content.Headers.ContentType?.MediaType, "url", ct);
        }
    }

    private static string? OptionalString(JsonElement body, string name)
    {
        if (!body.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.String ? value.GetString() : throw new DocumentException(400, $"'{name}' must be a string.", name);
    }

    private static string? ValidId(string? id)
    {
        if (id is null)
        {
            return null;
        }

        if (id.Length is 0 or > MaxIdLength || id.Any(char.IsControl) || id.Contains('/'))
        {
            throw new DocumentException(400, $"'id' must be 1–{MaxIdLength} characters without '/' or control characters.", "id");
        }

        return id;
    }

    /// <summary>Metadata as canonical JSON (keys sorted), so that the same metadata always hashes the same.</summary>
    private static string Metadata(JsonElement metadata)
    {
        if (metadata.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
        {
            return "{}";
        }

        if (metadata.ValueKind != JsonValueKind.Object)
        {
            throw new DocumentException(400, "'metadata' must be an object of string, number or boolean values.", "metadata");
        }

        var canonical = new JsonObject();
        foreach (var property in metadata.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal))
        {
            if (property.Value.ValueKind is not (JsonValueKind.String or JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False))
            {
                throw new DocumentException(400, $"'metadata.{property.Name}' must be a string, number or boolean.", $"metadata.{property.Name}");
            }

            canonical[property.Name] = JsonNode.Parse(property.Value.GetRawText());
        }

        return canonical.ToJsonString();
    }

    private static string WithSource(string metadata, string url)
    {
        var node = JsonNode.Parse(metadata)!.AsObject();
        node["source"] = url;
        return new JsonObject(node.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, p.Value?.DeepClone()))).ToJsonString();
    }
}
