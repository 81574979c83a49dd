// SPDX-License-Identifier: Apache-2.0 OR MIT
// PX_HOT marks a function on the path of every frame (send, publish, receive). GCC puts such
// functions together in .text.hot: a publisher that slept between frames finds the code of
// that path cold, and spread over the library it cost an instruction-TLB walk and i-cache
// misses per page it touched.
#pragma once

#if defined(__GNUC__)
#define PX_HOT __attribute__((hot))
#else
#define PX_HOT
#endif
