// fuzz/targets/chat_template.hpp: the input is a chat template; one that
// parses is rendered for a short conversation, with and without the
// generation prompt.
#pragma once

#include "../fuzz_support.hpp"
#include "unmask/chat/chat_template.hpp"

namespace unmask_fuzz {

inline int chat_template(const std::uint8_t* data, std::size_t size) {
  return refusing_quietly([&] {
    const unmask::chat_template t =
        unmask::chat_template::parse({reinterpret_cast<const char*>(data), size}, "chat_template");
    const std::vector<unmask::chat_message> messages = {
        {"system", "You are terse."}, {"user", "Hi {{ there }} {% if %}"}, {"assistant", "Hello."}, {"user", "Bye"}};
    unmask::chat_render_options options;
    options.bos_token = "<s>";
    options.eos_token = "</s>";
    (void)t.render(messages, options);
    options.add_generation_prompt = false;
    (void)t.render(messages, options);
  });
}

}  // namespace unmask_fuzz
