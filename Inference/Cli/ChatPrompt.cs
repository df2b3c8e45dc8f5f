using AspireAi.Inference.Models.Gguf;

namespace AspireAi.Inference.Cli;

/// <summary>
/// The prompt text of <c>generate --chat</c>. The model's own Jinja template needs the chat-template engine, which is not in
/// this branch yet; until it is wired here, every model gets the plain fallback below (stated on stderr when the file carries
/// a template of its own).
/// </summary>
public static class ChatPrompt
{
    public static string Render(GgufFile file, string? system, string user)
    {
        if (file.ContainsKey("tokenizer.chat_template"))
        {
            Console.Error.WriteLine("note: the model's chat template is not rendered yet (no Jinja engine in this build); using the plain fallback.");
        }

        var text = system is null ? "" : $"System: {system}\n";
        return text + $"User: {user}\nAssistant:";
    }
}
