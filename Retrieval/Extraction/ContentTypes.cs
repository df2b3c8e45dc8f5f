namespace AspireAi.Retrieval.Extraction;

/// <summary>The four document types retrieval reads, and how a submission's type is told.</summary>
internal static class ContentTypes
{
    public const string PlainText = "text/plain";
    public const string Markdown = "text/markdown";
    public const string Html = "text/html";
    public const string Pdf = "application/pdf";

    public static readonly string[] Supported = [PlainText, Markdown, Html, Pdf];

    /// <summary>
    /// The canonical type of a submission: the declared type (parameters dropped, aliases mapped) when it is specific, else
    /// the file name's extension, else the content's first bytes. Null when the declared type is one we cannot read.
    /// </summary>
    public static string? Resolve(string? declared, string? fileName, ReadOnlySpan<byte> head)
    {
        var type = declared?.Split(';')[0].Trim().ToLowerInvariant();
        switch (type)
        {
            case PlainText or Markdown or Html or Pdf:
                return type;
            case "text/x-markdown" or "text/md":
                return Markdown;
            case "application/xhtml+xml":
                return Html;
            case null or "" or "application/octet-stream" or "binary/octet-stream":
                break; // not specific: look further
            default:
                return null;
        }

        var byName = Path.GetExtension(fileName ?? "").ToLowerInvariant() switch
        {
            ".txt" or ".text" or ".log" => PlainText,
            ".md" or ".markdown" => Markdown,
            ".html" or ".htm" or ".xhtml" => Html,
            ".pdf" => Pdf,
            _ => null,
        };
        return byName ?? Sniff(head);
    }

    private static string? Sniff(ReadOnlySpan<byte> head)
    {
        if (head.StartsWith("%PDF-"u8))
        {
            return Pdf;
        }

        var text = System.Text.Encoding.UTF8.GetString(head).TrimStart('\uFEFF', ' ', '\t', '\r', '\n');
        if (text.StartsWith("<!doctype html", StringComparison.OrdinalIgnoreCase) || text.StartsWith("<html", StringComparison.OrdinalIgnoreCase))
        {
            return Html;
        }

        // Text if it decodes without control bytes other than whitespace; anything else (images, archives) is unsupported.
        return head.IndexOfAnyInRange((byte)0, (byte)8) < 0 && head.IndexOfAnyInRange((byte)14, (byte)31) < 0 ? PlainText : null;
    }
}
