using System.Text.RegularExpressions;

namespace AspireAi.Retrieval.Chunking;

/// <summary>
/// Splits a paragraph into sentences at '.', '!' or '?' (optionally closed by a quote or bracket) followed by whitespace
/// and a capital, digit or opening quote. Abbreviations such as "e.g. Foo" split wrongly, which only moves a chunk
/// boundary; a grammar-aware splitter is not in the package registry here.
/// </summary>
internal static partial class SentenceSplitter
{
    [GeneratedRegex("""(?<=[.!?]["'”’)\]]?)\s+(?=["'“‘(\[]?[\p{Lu}\d])""")]
    private static partial Regex Boundary();

    public static string[] Split(string paragraph) =>
        [.. Boundary().Split(paragraph).Select(s => s.Trim()).Where(s => s.Length > 0)];
}
