using System.Text.Json;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Download;
using AspireAi.Inference.Models.Gguf;
using AspireAi.Inference.Tokenization;

namespace AspireAi.Inference.Cli;

/// <summary><c>tokenize --model PATH --text "…"</c>: the ids as a JSON array (BOS added as the model asks).</summary>
public static class TokenizeCommand
{
    public static int Run(string[] argv)
    {
        var args = new CommandLine("tokenize", argv, new HashSet<string> { "model", "text" }, new HashSet<string> { "no-special" });
        var typed = args.RequiredString("model");
        var path = UserPath.Find(typed) ?? throw new UsageException($"tokenize: --model '{typed}' does not exist{UserPath.Searched(typed)}.");

        var text = args.String("text") ?? throw new UsageException("tokenize: --text is required.");
        using var source = path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) ? GgufFile.Open(path, metadataOnly: true) : ModelLoader.Open(path);
        var tokenizer = Tokenizers.For(source);
        Console.WriteLine(JsonSerializer.Serialize(tokenizer.Encode(text, addSpecial: !args.Has("no-special"))));
        return 0;
    }
}
