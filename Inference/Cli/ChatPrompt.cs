using AspireAi.Inference.Models;
using AspireAi.Inference.Tokenization;

namespace AspireAi.Inference.Cli;

/// <summary>
/// The prompt text of <c>generate --chat</c>: the model's own chat template (GGUF <c>tokenizer.chat_template</c> or the
/// folder's <c>tokenizer_config.json</c>); a model without one (stories15M is a base model) gets a plain fallback, said on stderr.
/// </summary>
public static class ChatPrompt
{
    public static string Render(IModelSource source, ITokenizer tokenizer, string? system, string user)
    {
        var messages = new List<ChatMessage>();
        if (system is not null)
        {
            messages.Add(new ChatMessage("system", system));
        }

        messages.Add(new ChatMessage("user", user));
        if (ChatTemplate.For(source, tokenizer) is { } template)
        {
            return template.Render(messages);
        }

        Console.Error.WriteLine("note: the model has no chat template; using the plain fallback \"System: …\\nUser: …\\nAssistant:\".");
        return (system is null ? "" : $"System: {system}\n") + $"User: {user}\nAssistant:";
    }
}
