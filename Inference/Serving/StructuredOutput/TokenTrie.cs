namespace AspireAi.Inference.Serving.StructuredOutput;

/// <summary>
/// Every token's bytes in a trie, built once per model: the constrained decoder walks it with the grammar state, so a byte
/// prefix shared by thousands of tokens is checked once, and a dead prefix rules out every token below it at once.
/// </summary>
public sealed class TokenTrie
{
    private readonly int[] _firstChild;
    private readonly int[] _childCount;
    private readonly byte[] _childBytes;
    private readonly int[] _childNodes;
    private readonly int[] _firstToken;
    private readonly int[] _tokenCount;
    private readonly int[] _tokens;

    public TokenTrie(TokenByteTable tokens)
    {
        // Build with per-node dictionaries, then flatten into arrays (children sorted by byte).
        var children = new List<SortedDictionary<byte, int>> { new() };
        var ends = new List<List<int>?> { null };
        var depth = 0;
        for (var id = 0; id < tokens.Count; id++)
        {
            var bytes = tokens[id];
            if (bytes.IsEmpty)
            {
                continue; // control tokens have no text; the engine handles end-of-generation ids itself
            }

            depth = Math.Max(depth, bytes.Length);
            var node = 0;
            foreach (var b in bytes)
            {
                if (!children[node].TryGetValue(b, out var child))
                {
                    child = children.Count;
                    children[node][b] = child;
                    children.Add(new SortedDictionary<byte, int>());
                    ends.Add(null);
                }

                node = child;
            }

            (ends[node] ??= []).Add(id);
        }

        var count = children.Count;
        NodeCount = count;
        MaxDepth = depth;
        _firstChild = new int[count];
        _childCount = new int[count];
        _firstToken = new int[count];
        _tokenCount = new int[count];
        var edges = children.Sum(c => c.Count);
        _childBytes = new byte[edges];
        _childNodes = new int[edges];
        _tokens = new int[ends.Sum(e => e?.Count ?? 0)];
        int e = 0, t = 0;
        for (var n = 0; n < count; n++)
        {
            _firstChild[n] = e;
            _childCount[n] = children[n].Count;
            foreach (var (b, child) in children[n])
            {
                _childBytes[e] = b;
                _childNodes[e++] = child;
            }

            _firstToken[n] = t;
            _tokenCount[n] = ends[n]?.Count ?? 0;
            foreach (var id in ends[n] ?? [])
            {
                _tokens[t++] = id;
            }
        }

        VocabularySize = tokens.Count;
        _plainChars = new int[tokens.Count];
        var other = new List<int>();
        for (var id = 0; id < tokens.Count; id++)
        {
            _plainChars[id] = PlainStringChars(tokens[id]);
            if (_plainChars[id] < 0 && !tokens[id].IsEmpty)
            {
                other.Add(id);
            }
        }

        _notPlain = other.ToArray();
    }

    private readonly int[] _plainChars;
    private readonly int[] _notPlain;

    /// <summary>Characters of the token when its bytes are plain string content (whole UTF-8 characters, no quote, backslash
    /// or control character); −1 otherwise. Inside a string such a token leaves the matcher where it was, bar the length.</summary>
    internal int PlainChars(int id) => _plainChars[id];

    /// <summary>Tokens with text that is not plain string content (they need the matcher byte by byte).</summary>
    internal ReadOnlySpan<int> NotPlainTokens => _notPlain;

    private static int PlainStringChars(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty)
        {
            return -1;
        }

        var chars = 0;
        for (var i = 0; i < bytes.Length; i++)
        {
            var b = bytes[i];
            if (b < 0x20 || b == '"' || b == '\\')
            {
                return -1;
            }

            if (b >= 0x80)
            {
                var status = System.Text.Rune.DecodeFromUtf8(bytes[i..], out _, out var consumed);
                if (status != System.Buffers.OperationStatus.Done)
                {
                    return -1;
                }

                i += consumed - 1;
            }

            chars++;
        }

        return chars;
    }

    public int NodeCount { get; }

    /// <summary>Bytes of the longest token.</summary>
    public int MaxDepth { get; }

    public int VocabularySize { get; }

    internal ReadOnlySpan<byte> ChildBytes(int node) => _childBytes.AsSpan(_firstChild[node], _childCount[node]);

    internal ReadOnlySpan<int> ChildNodes(int node) => _childNodes.AsSpan(_firstChild[node], _childCount[node]);

    internal ReadOnlySpan<int> TokensEndingAt(int node) => _tokens.AsSpan(_firstToken[node], _tokenCount[node]);
}
