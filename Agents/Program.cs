using AspireAi.Agents.Definitions;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddNpgsqlDataSource("agentsdb");
builder.Services.AddPostgresMigrations(AgentsSchema.Migrations);

var app = builder.Build();
app.UseOpenAiErrors();
app.MapDefaultEndpoints();
app.MapAgentEndpoints();
app.Run();
