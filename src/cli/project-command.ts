import type { Command } from 'commander';
import type { ProjectView } from '../api/schemas.js';
import { parseProjectName } from '../core/names.js';
import type { CliIo } from './cli-io.js';
import { withCommonOptions } from './common-options.js';
import { connect, type CommonOptions } from './credentials.js';
import { Output } from './output.js';

interface CreateOptions extends CommonOptions {
  readonly description?: string;
}

/** `strongroom project create|ls`. */
export function registerProjectCommands(program: Command, io: CliIo): void {
  const project = program.command('project').description('create and list projects');

  withCommonOptions(project.command('create'))
    .description('create a project')
    .argument('<name>', 'project name: lowercase letters, digits and dashes')
    .option('--description <text>', 'what the project holds')
    .action(async (name: string, options: CreateOptions) => {
      const projectName = parseProjectName(name);
      const client = await connect(io, options);
      const created = await client.createProject({
        name: projectName,
        ...(options.description === undefined ? {} : { description: options.description }),
      });
      const out = new Output(io, options.json === true);
      out.result(created, () => out.line(`created project ${created.name}`));
    });

  withCommonOptions(project.command('ls'))
    .description('list the projects you can see')
    .action(async (options: CommonOptions) => {
      const client = await connect(io, options);
      const projects: ProjectView[] = [];
      for await (const item of client.iterateProjects()) projects.push(item);
      const out = new Output(io, options.json === true);
      out.result(projects, () =>
        out.table(
          ['NAME', 'CREATED', 'DESCRIPTION'],
          projects.map((p) => [p.name, p.createdAt, p.description]),
          'no projects',
        ),
      );
    });
}
