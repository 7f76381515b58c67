/*
 * nats_dl.h — libnats, loaded when the JetStream backend is first opened.
 *
 * Linking libnats would load it, and through it OpenSSL and protobuf-c, into every
 * program that can open an event log — the `tabbify` CLI included, where it tripled
 * start-up time for commands that never touch NATS. So the distributed backend reaches
 * libnats through this table of function pointers, filled by dlopen/dlsym the first time
 * it is needed; programs on the embedded default never load it. Each pointer has the
 * exact type of the function it stands for (__typeof__ of nats.h's declaration), so the
 * compiler checks every call as before.
 */
#ifndef TB_NATS_DL_H
#define TB_NATS_DL_H

#include <nats/nats.h>

#include "tb/dl.h"
#include "tb/err.h"

/* Every libnats function the backend calls. */
#define TB__NATS_SYMBOLS(X, A) \
  X(A, jsCtx_Destroy) \
  X(A, jsFetchRequest_Init) \
  X(A, jsMsgMetaData_Destroy) \
  X(A, jsOptions_Init) \
  X(A, jsStreamConfig_Init) \
  X(A, jsStreamInfo_Destroy) \
  X(A, jsSubOptions_Init) \
  X(A, js_AddStream) \
  X(A, js_CreateKeyValue) \
  X(A, js_GetMsg) \
  X(A, js_GetStreamInfo) \
  X(A, js_KeyValue) \
  X(A, js_PullSubscribe) \
  X(A, kvConfig_Init) \
  X(A, kvEntry_Destroy) \
  X(A, kvEntry_ValueString) \
  X(A, kvStore_Delete) \
  X(A, kvStore_Destroy) \
  X(A, kvStore_Get) \
  X(A, kvStore_PutString) \
  X(A, natsConnection_Close) \
  X(A, natsConnection_Connect) \
  X(A, natsConnection_Destroy) \
  X(A, natsConnection_JetStream) \
  X(A, natsConnection_PublishMsg) \
  X(A, natsConnection_Subscribe) \
  X(A, natsInbox_Create) \
  X(A, natsInbox_Destroy) \
  X(A, natsMsgHeader_Get) \
  X(A, natsMsgHeader_Set) \
  X(A, natsMsgList_Destroy) \
  X(A, natsMsg_Create) \
  X(A, natsMsg_Destroy) \
  X(A, natsMsg_GetData) \
  X(A, natsMsg_GetDataLength) \
  X(A, natsMsg_GetMetaData) \
  X(A, natsMsg_GetSubject) \
  X(A, natsMsg_IsNoResponders) \
  X(A, natsOptions_Create) \
  X(A, natsOptions_Destroy) \
  X(A, natsOptions_SetMaxPingsOut) \
  X(A, natsOptions_SetMaxReconnect) \
  X(A, natsOptions_SetPingInterval) \
  X(A, natsOptions_SetReconnectBufSize) \
  X(A, natsOptions_SetReconnectJitter) \
  X(A, natsOptions_SetReconnectWait) \
  X(A, natsOptions_SetTimeout) \
  X(A, natsOptions_SetURL) \
  X(A, natsStatus_GetText) \
  X(A, natsSubscription_Destroy) \
  X(A, natsSubscription_FetchRequest) \
  X(A, natsSubscription_SetPendingLimits) \
  X(A, natsSubscription_Unsubscribe) \
  X(A, nats_GetLastError) \

typedef struct tb__nats_api {
  TB__NATS_SYMBOLS(TB_DL_POINTER, )
} tb__nats_api_t;

/** The loaded functions; valid after tb__nats_load() returned 0. */
extern tb__nats_api_t tb__nats;

/**
 * Loads libnats once per process (thread-safe). Returns 0, or TB_ENOTSUP with a sentence
 * in `eb` naming the library and why it could not be loaded.
 */
int tb__nats_load(tb_errbuf_t *eb);

#endif /* TB_NATS_DL_H */
