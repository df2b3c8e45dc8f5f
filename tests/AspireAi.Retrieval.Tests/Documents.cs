using UglyToad.PdfPig.Content;
using UglyToad.PdfPig.Core;
using UglyToad.PdfPig.Fonts.Standard14Fonts;
using UglyToad.PdfPig.Writer;

namespace AspireAi.Retrieval.Tests;

/// <summary>Real documents of each supported format, built from the same paragraphs.</summary>
internal static class Documents
{
    public const string Markdown = $"""
        # Geology

        ## Volcanoes

        {Corpus.Volcanoes}

        - Shield volcanoes have gentle slopes.
        - Cinder cones are small and steep.

        ## Code sample

        ```
        var eruption = new Eruption(magma: 1200);
        ```
        """;

    public const string Html = $$"""
        <!doctype html>
        <html><head><title>Kitchen notes</title><style>body { color: red }</style><script>var hidden = "zeppelin";</script></head>
        <body>
          <nav>Home | About</nav>
          <h1>Baking</h1>
          <p>{{Corpus.Baking}}</p>
          <div>Loose text in a div <b>with bold</b> words.</div>
          <h2>Chess</h2>
          <ul><li>{{Corpus.Chess}}</li></ul>
        </body></html>
        """;

    /// <summary>A two-page PDF written with PdfPig's builder (Helvetica), one paragraph per line group.</summary>
    public static byte[] Pdf()
    {
        var builder = new PdfDocumentBuilder();
        var font = builder.AddStandard14Font(Standard14Font.Helvetica);
        string[][] pages =
        [
            ["A light-year is the distance light travels", "in one year, about 9.46 trillion kilometres."],
            ["Proxima Centauri, the nearest star to the Sun,", "is roughly 4.24 light-years away."],
        ];
        foreach (var lines in pages)
        {
            var page = builder.AddPage(PageSize.A4);
            for (var i = 0; i < lines.Length; i++)
            {
                page.AddText(lines[i], 12, new PdfPoint(50, 750 - 16 * i), font);
            }
        }

        return builder.Build();
    }
}
