import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';

/** Serves the OpenAPI document at /openapi.json and Swagger UI at /docs. */
export function setupOpenApi(app: NestFastifyApplication): void {
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('nest-async-api')
      .setDescription(
        'Users, health and metrics. Every error is an RFC 9457 problem document (application/problem+json).',
      )
      .setVersion('0.1.0')
      // The scheme @ApiBearerAuth() names ('bearer'): the service's or its identity provider's JWTs.
      .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }, 'bearer')
      .build(),
  );
  // GET /health is a plain Fastify route (a prepared snapshot), outside what Nest's scanner sees.
  document.paths['/health'] = {
    get: {
      tags: ['health'],
      summary: 'Liveness: uptime, memory, CPU and event-loop delay, from a snapshot at most 1 s old',
      responses: { '200': { description: 'The process is alive (Terminus format)' } },
    },
  };
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'openapi.json', yamlDocumentUrl: 'openapi.yaml' });
}
