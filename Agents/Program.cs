using AspireAi.Agents;
using AspireAi.Agents.ChatCompletions;
using AspireAi.Agents.Definitions;
using AspireAi.Agents.Memory;
using AspireAi.Agents.Models;
using AspireAi.Agents.Runs;
using AspireAi.Agents.Storage;
using AspireAi.Agents.Threads;
using AspireAi.Agents.Tools;
using AspireAi.Agents.Tools.Files;
using AspireAi.Agents.Tools.Http;
using AspireAi.Agents.Tools.Mcp;
using AspireAi.Agents.Tools.Retrieval;
using AspireAi.Agents.Tools.Sandbox;
using AspireAi.Agents.Tools.Sql;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddNpgsqlDataSource("agentsdb");
builder.Services.AddPostgresMigrations(AgentsSchema.Migrations);
builder.Services.AddOptions<AgentsOptions>().Bind(builder.Configuration.GetSection(AgentsOptions.Section));
builder.Services.AddSingleton(TimeProvider.System);

// Storage, one small interface per aggregate.
builder.Services.AddSingleton<IAgentStore, PostgresAgentStore>();
builder.Services.AddSingleton<IThreadStore, PostgresThreadStore>();
builder.Services.AddSingleton<RunStore>();

// Models: OpenAI-compatible endpoint by service discovery, behind the router.
builder.Services.AddHttpClient(OpenAiChatModelProvider.HttpClientName);
builder.Services.AddSingleton<IChatModelProvider, OpenAiChatModelProvider>();
builder.Services.AddSingleton<ModelRouter>();

// Tools.
builder.Services.AddHttpClient(RetrievalClient.HttpClientName);
builder.Services.AddSingleton<RetrievalClient>();
builder.Services.AddSingleton<BubblewrapSandbox>();
builder.Services.AddSingleton<SemanticMemory>();
builder.Services.AddSingleton<HttpFetchTool>();
builder.Services.AddSingleton<IToolFactory, SearchDocumentsTool>();
builder.Services.AddSingleton<IToolFactory>(sp => sp.GetRequiredService<HttpFetchTool>());
builder.Services.AddSingleton<IToolFactory, RunCodeTool>();
builder.Services.AddSingleton<IToolFactory, WorkspaceFileTools>();
builder.Services.AddSingleton<IToolFactory, SqlQueryTool>();
builder.Services.AddSingleton<IToolFactory, McpToolSource>();
builder.Services.AddSingleton<IToolFactory>(sp => sp.GetRequiredService<SemanticMemory>());
builder.Services.AddSingleton<ToolCatalog>();

// Runs: executed under leases, resumed after restarts.
builder.Services.AddSingleton<RunEventHub>();
builder.Services.AddSingleton<RunExecutor>();
builder.Services.AddSingleton<RunSupervisor>();
builder.Services.AddHostedService(sp => sp.GetRequiredService<RunSupervisor>());

var app = builder.Build();
app.UseOpenAiErrors();
app.Use(async (context, next) =>
{
    try
    {
        await next(context);
    }
    catch (RequestException ex) when (!context.Response.HasStarted)
    {
        await OpenAiError.WriteAsync(context, ex.Status, ex.Message, ex.Param, ex.Code);
    }
});
app.MapDefaultEndpoints();
app.MapAgentEndpoints();
app.MapThreadEndpoints();
app.MapRunEndpoints();
app.MapAgentChatCompletions();
app.Run();
