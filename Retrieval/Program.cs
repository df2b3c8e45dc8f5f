using AspireAi.Retrieval.Collections;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddNpgsqlDataSource("retrievaldb");
builder.Services.AddPostgresMigrations(RetrievalSchema.Migrations);

var app = builder.Build();
app.UseOpenAiErrors();
app.MapDefaultEndpoints();
app.MapCollectionEndpoints();
app.Run();
