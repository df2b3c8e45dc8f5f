using System.Text.Json;
using AspireAi.Inference.Engine;
using AspireAi.Inference.Serving;
using AspireAi.Inference.Serving.StructuredOutput;
using AspireAi.Inference.Tests.Support;
using Json.Schema;

namespace AspireAi.Inference.Tests.Serving;

/// <summary>
/// Constrained decoding with a random-weight model (which on its own writes noise) over a real 32,000-token vocabulary:
/// every output of every schema must parse and validate (checked by JsonSchema.Net, an independent validator).
/// </summary>
public sealed class StructuredOutputTests(RealVocabularyFixture fixture) : IClassFixture<RealVocabularyFixture>
{
    private readonly TinyEngine _tiny = fixture.Tiny;
    private readonly TokenByteTable _bytes = fixture.Bytes;
    private readonly TokenTrie _trie = fixture.Trie;

    public static TheoryData<string> Schemas() =>
    [
        """{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0}},"required":["name","age"],"additionalProperties":false}""",
        """{"type":"object","properties":{"city":{"type":"string","minLength":2,"maxLength":12},"temperature":{"type":"number"},"unit":{"enum":["celsius","fahrenheit"]}},"required":["city","unit"]}""",
        """{"type":"array","items":{"type":"object","properties":{"id":{"type":"integer"},"done":{"type":"boolean"}},"required":["id","done"]},"minItems":1,"maxItems":3}""",
        """{"type":"object","properties":{"tags":{"type":"array","items":{"type":"string","maxLength":8}},"note":{"type":["string","null"]},"kind":{"const":"event"}},"required":["tags","kind"]}""",
        """{"$defs":{"node":{"type":"object","properties":{"value":{"type":"integer"},"children":{"type":"array","items":{"$ref":"#/$defs/node"},"maxItems":2}},"required":["value"]}},"$ref":"#/$defs/node"}""",
        """{"anyOf":[{"type":"object","properties":{"ok":{"const":true},"result":{"type":"string"}},"required":["ok","result"]},{"type":"object","properties":{"ok":{"const":false},"error":{"type":"string"}},"required":["ok","error"]}]}""",
        """{"type":"object"}""",
    ];

    [Theory]
    [MemberData(nameof(Schemas))]
    public async Task Every_output_parses_and_validates(string schemaText)
    {
        using var schemaDocument = JsonDocument.Parse(schemaText);
        var validator = JsonSchema.FromText(schemaText);
        var engine = fixture.Engine;
        var handles = new List<EngineRequestHandle>();
        for (var i = 0; i < 6; i++)
        {
            handles.Add(engine.Submit(new EngineRequest
            {
                PromptTokenIds = [1, 100 + i, 200 + i * 3],
                // Short budgets force the output to close early; long ones let the noise wander.
                MaxTokens = i % 2 == 0 ? 30 : 90,
                Sampling = new SamplingParams { Temperature = 1.0f, Seed = i },
                StopTokenIds = _tiny.Tokenizer.EndOfGenerationIds,
                Constraint = GrammarConstraint.ForJson(_trie, _bytes, schemaDocument.RootElement),
            }, TestContext.Current.CancellationToken));
        }

        foreach (var handle in handles)
        {
            var text = "";
            await foreach (var e in handle.ReadAllAsync(TestContext.Current.CancellationToken))
            {
                text += e.Text;
            }

            using var output = JsonDocument.Parse(text); // throws when the output is not JSON
            var result = validator.Evaluate(output.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
            Assert.True(result.IsValid, $"{text} does not validate: {JsonSerializer.Serialize(result)}");
        }
    }

    [Fact]
    public void Unsupported_keywords_are_refused_with_their_place()
    {
        using var schema = JsonDocument.Parse("""{"type":"object","properties":{"code":{"type":"string","pattern":"^[A-Z]+$"}}}""");
        var error = Assert.Throws<UnsupportedSchemaException>(() => GrammarConstraint.ForJson(_trie, _bytes, schema.RootElement));
        Assert.Contains("#/properties/code", error.Message);
        Assert.Contains("pattern", error.Message);
    }
}

/// <summary>One random-weight model with the real vocabulary, its token trie and an engine, shared by a test class.</summary>
public sealed class RealVocabularyFixture : IDisposable
{
    public RealVocabularyFixture()
    {
        Tiny = new TinyEngine(RealVocabularyModel.Spec, RealVocabularyModel.Write);
        Bytes = new TokenByteTable(Tiny.Tokenizer);
        Trie = new TokenTrie(Bytes);
        Engine = Tiny.CreateEngine(new EngineOptions { KvCacheBlocks = 256, MaxBatchedTokens = 256, MaxNumSeqs = 8 }, threads: 2);
    }

    public TinyEngine Tiny { get; }

    public TokenByteTable Bytes { get; }

    public TokenTrie Trie { get; }

    public LlmEngine Engine { get; }

    public void Dispose() => Tiny.Dispose();
}
