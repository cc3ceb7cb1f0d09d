/* hello: the greeting the hello program prints. */
#ifndef HELLO_H
#define HELLO_H

#define HELLO_GREETING "Hello from forge!"

#endif
