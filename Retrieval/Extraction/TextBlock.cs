namespace AspireAi.Retrieval.Extraction;

/// <summary>A unit of a document's text: a heading (level 1–6) or a body block (level 0: paragraph, list item, code, cell…).</summary>
internal sealed record TextBlock(string Text, int HeadingLevel = 0)
{
    public bool IsHeading => HeadingLevel > 0;
}
