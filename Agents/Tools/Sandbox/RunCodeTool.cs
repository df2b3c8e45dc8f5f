using System.ComponentModel;
using AspireAi.Agents.Definitions;
using Microsoft.Extensions.AI;

namespace AspireAi.Agents.Tools.Sandbox;

/// <summary><c>run_code</c>: Python or shell in the <see cref="BubblewrapSandbox"/>, with the run's workspace as its scratch folder.</summary>
internal sealed class RunCodeTool(BubblewrapSandbox sandbox) : IToolFactory
{
    public string Type => ToolTypes.RunCode;

    public ValueTask<IReadOnlyList<ToolFunction>> CreateAsync(ToolSpec spec, ToolContext context, CancellationToken ct)
    {
        var function = AIFunctionFactory.Create(
            async ([Description("The program's source code.")] string code,
                   [Description("python or sh.")] string language = "python",
                   CancellationToken cancellationToken = default) =>
            {
                try
                {
                    return (await sandbox.RunAsync(language, code, context.Workspace, cancellationToken)).ToString();
                }
                catch (SandboxUnavailableException ex)
                {
                    throw new ToolException($"run_code is unavailable on this server, and code is never run outside the sandbox: {ex.Message}");
                }
            },
            ToolTypes.RunCode,
            "Runs a short program in an isolated sandbox without network access; the current folder is the only writable one. Returns exit code, stdout and stderr.");
        return ValueTask.FromResult<IReadOnlyList<ToolFunction>>([new ToolFunction(function, IsReadOnly: false, RequiresApproval: false)]);
    }
}
