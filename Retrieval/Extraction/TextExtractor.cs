using System.Text;
using AngleSharp.Dom;
using AngleSharp.Html.Parser;
using Markdig;
using Markdig.Syntax;
using UglyToad.PdfPig;
using UglyToad.PdfPig.DocumentLayoutAnalysis.PageSegmenter;
using UglyToad.PdfPig.DocumentLayoutAnalysis.WordExtractor;

namespace AspireAi.Retrieval.Extraction;

/// <summary>
/// Document → text blocks, by maintained parsers: Markdig's syntax tree for Markdown, AngleSharp's HTML5 DOM, PdfPig's
/// words and Docstrum layout analysis for PDF. Blocks keep the document's headings so that chunks can follow sections.
/// </summary>
internal static class TextExtractor
{
    private static readonly MarkdownPipeline MarkdownPipeline = new MarkdownPipelineBuilder().UseAdvancedExtensions().Build();

    /// <exception cref="InvalidDataException">The content is not a readable document of <paramref name="contentType"/>.</exception>
    public static List<TextBlock> Extract(string contentType, Stream content) => contentType switch
    {
        ContentTypes.PlainText => PlainText(ReadText(content)),
        ContentTypes.Markdown => Markdown(ReadText(content)),
        ContentTypes.Html => Html(content),
        ContentTypes.Pdf => Pdf(content),
        _ => throw new ArgumentOutOfRangeException(nameof(contentType), contentType, "not a supported content type"),
    };

    private static string ReadText(Stream content)
    {
        using var reader = new StreamReader(content, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        return reader.ReadToEnd();
    }

    /// <summary>Paragraphs are separated by blank lines; line breaks inside one are just wrapping.</summary>
    private static List<TextBlock> PlainText(string text) =>
        [.. text.ReplaceLineEndings("\n").Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Select(Normalize).Where(p => p.Length > 0).Select(p => new TextBlock(p))];

    private static List<TextBlock> Markdown(string markdown)
    {
        var document = Markdig.Markdown.Parse(markdown, MarkdownPipeline);
        var blocks = new List<TextBlock>();
        foreach (var block in document.Descendants<LeafBlock>())
        {
            var source = markdown.Substring(block.Span.Start, block.Span.Length);
            var text = block switch
            {
                HeadingBlock heading => Normalize(source.TrimStart('#').TrimEnd('#', ' ', '\n', '=', '-')),
                CodeBlock => source.Trim(),
                _ => Normalize(Markdig.Markdown.ToPlainText(source, MarkdownPipeline)),
            };
            if (text.Length > 0)
            {
                blocks.Add(new TextBlock(text, block is HeadingBlock h ? h.Level : 0));
            }
        }

        return blocks;
    }

    private static readonly HashSet<string> Skipped = ["SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE", "NAV", "SVG", "HEAD"];

    private static readonly HashSet<string> BlockElements =
    [
        "P", "DIV", "SECTION", "ARTICLE", "MAIN", "ASIDE", "HEADER", "FOOTER", "LI", "UL", "OL", "DL", "DT", "DD", "PRE",
        "BLOCKQUOTE", "TABLE", "THEAD", "TBODY", "TR", "TD", "TH", "FIGURE", "FIGCAPTION", "H1", "H2", "H3", "H4", "H5", "H6",
        "FORM", "FIELDSET", "ADDRESS", "DETAILS", "SUMMARY", "HR", "BR",
    ];

    private static List<TextBlock> Html(Stream content)
    {
        var document = new HtmlParser().ParseDocument(content);
        var blocks = new List<TextBlock>();
        if (document.Title is { Length: > 0 } title && document.QuerySelector("h1") is null)
        {
            blocks.Add(new TextBlock(Normalize(title), 1));
        }

        if (document.Body is { } body)
        {
            Walk(body, blocks);
        }

        return blocks;
    }

    /// <summary>A heading becomes a heading block; an element with no block-level children becomes one body block.</summary>
    private static void Walk(IElement element, List<TextBlock> blocks)
    {
        var inline = new StringBuilder();
        foreach (var node in element.ChildNodes)
        {
            if (node is IElement child && Skipped.Contains(child.TagName))
            {
                continue;
            }

            if (node is IElement block && BlockElements.Contains(block.TagName))
            {
                Flush(inline, blocks);
                if (block.TagName is ['H', >= '1' and <= '6'])
                {
                    AddBlock(blocks, block.TextContent, block.TagName[1] - '0');
                }
                else if (block.TagName == "PRE")
                {
                    AddBlock(blocks, block.TextContent.Trim(), 0, normalize: false);
                }
                else
                {
                    Walk(block, blocks);
                }
            }
            else
            {
                inline.Append(node.TextContent).Append(node is IElement ? " " : "");
            }
        }

        Flush(inline, blocks);
    }

    private static void Flush(StringBuilder inline, List<TextBlock> blocks)
    {
        AddBlock(blocks, inline.ToString(), 0);
        inline.Clear();
    }

    private static void AddBlock(List<TextBlock> blocks, string text, int level, bool normalize = true)
    {
        var value = normalize ? Normalize(text) : text;
        if (value.Length > 0)
        {
            blocks.Add(new TextBlock(value, level));
        }
    }

    private static List<TextBlock> Pdf(Stream content)
    {
        PdfDocument document;
        try
        {
            document = PdfDocument.Open(content);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            throw new InvalidDataException($"The PDF could not be read: {ex.Message}", ex);
        }

        using (document)
        {
            var blocks = new List<TextBlock>();
            foreach (var page in document.GetPages())
            {
                var words = page.GetWords(NearestNeighbourWordExtractor.Instance).ToList();
                if (words.Count == 0)
                {
                    continue;
                }

                // Docstrum groups words into the page's text blocks (paragraphs, columns) in reading order.
                foreach (var region in DocstrumBoundingBoxes.Instance.GetBlocks(words))
                {
                    AddBlock(blocks, region.Text, 0);
                }
            }

            return blocks;
        }
    }

    /// <summary>Collapses runs of whitespace (wrapping, indentation) into single spaces.</summary>
    private static string Normalize(string text)
    {
        var builder = new StringBuilder(text.Length);
        var space = false;
        foreach (var c in text)
        {
            if (char.IsWhiteSpace(c))
            {
                space = builder.Length > 0;
                continue;
            }

            if (space)
            {
                builder.Append(' ');
                space = false;
            }

            builder.Append(c);
        }

        return builder.ToString();
    }
}
