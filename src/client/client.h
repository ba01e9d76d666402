#pragma once

// The Magnetar relay client library in one include (installed as <magnetar/client/client.h>).
// Link magnetar::client (find_package(magnetar-client)). See README.md in the source tree.

#include "client/auth.h"
#include "client/credentials.h"
#include "client/device_flow.h"
#include "client/eftl.h"
#include "client/eftl_message.h"
#include "client/errors.h"
#include "client/subscriber.h"
#include "client/tls_options.h"
#include "client/topics.h"
#include "client/transport.h"
#include "client/url.h"
