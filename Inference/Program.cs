using AspireAi.Inference.Cli;

return CliApp.Run(args);
