using AspireAi.Retrieval.Chunking;
using AspireAi.Retrieval.Extraction;

namespace AspireAi.Retrieval.Tests;

public sealed class ChunkerTests
{
    private readonly Chunker _chunker = new(Chunker.DefaultTokenizer, maxTokens: 50, overlapTokens: 12);

    [Fact]
    public void Headings_start_chunks_and_head_every_chunk_of_their_section()
    {
        var chunks = _chunker.Chunk([
            new TextBlock("Guide", 1), new TextBlock("Intro text."),
            new TextBlock("Setup", 2), new TextBlock("Install the tool."),
            new TextBlock("Usage", 2), new TextBlock("Run it."),
        ]);
        Assert.Equal(["Guide\n\nIntro text.", "Guide › Setup\n\nInstall the tool.", "Guide › Usage\n\nRun it."], chunks);
    }

    [Fact]
    public void Long_paragraphs_split_between_sentences_within_the_budget_with_overlap()
    {
        var sentences = Enumerable.Range(1, 30).Select(i => $"Sentence number {i} talks about topic {i * 7}.").ToArray();
        var chunks = _chunker.Chunk([new TextBlock("Long", 1), new TextBlock(string.Join(' ', sentences))]);

        Assert.True(chunks.Count > 3);
        Assert.All(chunks, c => Assert.True(_chunker.CountTokens(c) <= 50, $"{_chunker.CountTokens(c)} tokens: {c}"));
        Assert.All(chunks, c => Assert.StartsWith("Long\n\n", c));
        Assert.All(sentences, s => Assert.Contains(chunks, c => c.Contains(s)));
        Assert.All(chunks.Skip(1), c => Assert.Matches(@"^Long\n\nSentence number \d+", c)); // cut at sentence starts
        for (var i = 1; i < chunks.Count; i++)
        {
            var firstSentence = chunks[i]["Long\n\n".Length..].Split(". ")[0];
            Assert.Contains(firstSentence, chunks[i - 1]); // the overlap repeats the previous chunk's tail
        }
    }

    [Fact]
    public void A_sentence_longer_than_a_chunk_is_cut_between_tokens()
    {
        var giant = string.Join(' ', Enumerable.Range(0, 200).Select(i => $"word{i}"));
        var chunks = _chunker.Chunk([new TextBlock(giant)]);
        Assert.True(chunks.Count >= 4);
        Assert.All(chunks, c => Assert.True(_chunker.CountTokens(c) <= 50));
        Assert.Contains("word199", chunks[^1]);
    }

    [Fact]
    public void Paragraphs_are_packed_whole_while_they_fit()
    {
        var chunks = _chunker.Chunk([new TextBlock("One short paragraph."), new TextBlock("Another short one."), new TextBlock("A third.")]);
        Assert.Equal(["One short paragraph.\n\nAnother short one.\n\nA third."], chunks);
    }

    [Fact]
    public void A_document_without_text_has_no_chunks() => Assert.Empty(_chunker.Chunk([new TextBlock("Only a heading", 1)]));
}
