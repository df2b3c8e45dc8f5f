using AspireAi.Retrieval.Extraction;
using Microsoft.ML.Tokenizers;

namespace AspireAi.Retrieval.Chunking;

/// <summary>
/// Token-aware chunking that follows the document's structure: a heading starts a new chunk and is repeated at the top
/// of every chunk of its section (so a chunk says what it is about); paragraphs are packed whole while they fit; a
/// paragraph too long for one chunk is cut between sentences, a sentence too long between tokens; each chunk after the
/// first of a section starts with the last sentences of the one before (up to the overlap budget).
/// </summary>
/// <remarks>
/// Tokens are counted with cl100k_base (Microsoft.ML.Tokenizers), a model-independent stand-in: Retrieval does not hold
/// the embedding model's vocabulary. For English prose all-MiniLM's WordPiece makes ~1.1–1.3× as many tokens, hence the
/// 180-token default under its 256 window.
/// </remarks>
internal sealed class Chunker(Tokenizer tokenizer, int maxTokens, int overlapTokens)
{
    public static Tokenizer DefaultTokenizer { get; } = TiktokenTokenizer.CreateForEncoding("cl100k_base");

    public int CountTokens(string text) => tokenizer.CountTokens(text);

    public List<string> Chunk(IReadOnlyList<TextBlock> blocks)
    {
        var chunks = new List<string>();
        var headings = new List<TextBlock>();
        var section = new List<string>();
        foreach (var block in blocks)
        {
            if (block.IsHeading)
            {
                ChunkSection(HeadingLine(headings), section, chunks);
                section.Clear();
                headings.RemoveAll(h => h.HeadingLevel >= block.HeadingLevel);
                headings.Add(block);
            }
            else
            {
                section.Add(block.Text);
            }
        }

        ChunkSection(HeadingLine(headings), section, chunks);
        return chunks;
    }

    private static string HeadingLine(List<TextBlock> headings) => string.Join(" › ", headings.Select(h => h.Text));

    private void ChunkSection(string heading, List<string> paragraphs, List<string> chunks)
    {
        if (paragraphs.Count == 0)
        {
            return;
        }

        var headingTokens = heading.Length == 0 ? 0 : CountTokens(heading) + 1;
        // A heading longer than half a chunk would crowd out the text: it is then only on the section's first chunk.
        var repeatHeading = headingTokens <= maxTokens / 2;
        var budget = maxTokens - (repeatHeading ? headingTokens : 0);
        var parts = new List<(string Text, int Tokens, bool ParagraphStart)>();
        foreach (var paragraph in paragraphs)
        {
            var tokens = CountTokens(paragraph);
            if (tokens <= budget)
            {
                parts.Add((paragraph, tokens, true));
                continue;
            }

            var first = true;
            foreach (var sentence in SentenceSplitter.Split(paragraph))
            {
                foreach (var piece in SplitLong(sentence, budget))
                {
                    parts.Add((piece, CountTokens(piece), first));
                    first = false;
                }
            }
        }

        var current = new List<(string Text, int Tokens, bool ParagraphStart)>();
        var used = 0;
        var isFirst = true;
        foreach (var part in parts)
        {
            if (current.Count > 0 && used + part.Tokens + 1 > budget)
            {
                Emit();
                current = Overlap(current);
                used = current.Sum(p => p.Tokens + 1);
                if (used + part.Tokens + 1 > budget)
                {
                    (current, used) = ([], 0); // the overlap would push this part over the limit: start clean
                }
            }

            current.Add(part);
            used += part.Tokens + 1;
        }

        Emit();

        void Emit()
        {
            if (current.Count == 0)
            {
                return;
            }

            var body = string.Concat(current.Select((p, i) => (i == 0 ? "" : p.ParagraphStart ? "\n\n" : " ") + p.Text));
            chunks.Add(heading.Length > 0 && (repeatHeading || isFirst) ? heading + "\n\n" + body : body);
            isFirst = false;
        }
    }

    /// <summary>The trailing sentences of a chunk that fit in the overlap budget, to open the next one.</summary>
    private List<(string Text, int Tokens, bool ParagraphStart)> Overlap(List<(string Text, int Tokens, bool ParagraphStart)> previous)
    {
        var tail = new List<(string Text, int Tokens, bool ParagraphStart)>();
        var used = 0;
        for (var i = previous.Count - 1; i >= 0; i--)
        {
            var sentences = SentenceSplitter.Split(previous[i].Text);
            for (var s = sentences.Length - 1; s >= 0; s--)
            {
                var tokens = CountTokens(sentences[s]);
                if (used + tokens > overlapTokens)
                {
                    return tail;
                }

                tail.Insert(0, (sentences[s], tokens, s == 0 && previous[i].ParagraphStart));
                used += tokens;
            }
        }

        return tail;
    }

    /// <summary>Cuts a sentence longer than <paramref name="budget"/> tokens into pieces of at most that many.</summary>
    private IEnumerable<string> SplitLong(string sentence, int budget)
    {
        var ids = tokenizer.EncodeToIds(sentence);
        if (ids.Count <= budget)
        {
            yield return sentence;
            yield break;
        }

        for (var start = 0; start < ids.Count; start += budget)
        {
            var piece = tokenizer.Decode(ids.Skip(start).Take(budget))?.Trim();
            if (!string.IsNullOrEmpty(piece))
            {
                yield return piece;
            }
        }
    }
}
